/**
 * The common spec — steps whose arguments are numbers, strings, booleans, null and refs —
 * written straight as msgpack, with none of the general encoder's walk for values that
 * need a box: a client encodes one spec per task, and for tiny tasks the general path cost
 * more than the rest of the submission. It is written compact, as the bare msgpack list
 * `[steps, stepKeys, out]` with each step `[fn, deps, args, argRefs]`: no message around
 * it (a message is a map, so the two are told apart by their first byte), no field
 * names, and an argument that is a ref written as nil, since the call fills it from
 * its dependency (argRefs) and the key is already in deps; so the scheduler holds (and
 * every hop carries) half as much per task of a graph of sums as the general encoder writes.
 * A spec that travels in its task leaves out what the task says beside it: its functions,
 * its key and, for a single step, the step's dependencies when they are the task's (nil in
 * their places). encoded-spec.ts decodes it, with the task's key, function ids and
 * dependency keys where given, to the very spec the general path would give; anything
 * else returns null, and the caller takes the general path.
 *
 * ```ts
 * const encoded = writeSpecBase64({ node });       // the encoded spec, or null: encode it in full
 * const inTask = writeSpecBase64({ node }, key, dependencies);   // the same, less what its task says
 * writeCallBase64([1, 'a']);                        // inTask for a call of one step, no refs
 * ```
 */
import { Ref } from '../graph/task.js';
import type { TaskSpec, WireStep } from './task-spec.js';

const MAX_BUFFER = 2 ** 20;
let buf = Buffer.allocUnsafe(64 * 1024);
let pos = 0;

/**
 * The spec as the compact list `[steps, stepKeys, out]` in base64, or null when it needs
 * the general encoder. With `key`, the spec travels in a task of that key that names its
 * functions beside it, one per step in order (an update-graph's task, a worker's compute):
 * what the task says is left out — each step's function, and the key of a single step that
 * is the task's own, are written as nil (encoded-spec.ts fills them in from the task). With
 * `dependencies` too, the task's dependency keys as its worker will know them, a single
 * step whose dependencies are those (the same keys in order, none twice, not the task's
 * own) has nil for them.
 */
export function writeSpecBase64(spec: TaskSpec, key?: string, dependencies?: readonly string[]): string | null {
  return written(writeSpec, spec, key, dependencies);
}

/**
 * What writeSpecBase64 writes for `{ node: { steps: [step], stepKeys: [key], out: true } }`
 * and its `key`, where the step calls its task's function with `args` and has no
 * dependencies: a call of `map` or `submit` without futures, written without building the
 * spec first (the key and the function travel beside it).
 */
export function writeCallBase64(args: readonly unknown[]): string | null {
  return written(writeCall, args, undefined, undefined);
}

/** What `write` wrote, in base64, the buffer grown as needed; null when it returns false. */
function written<A, B, C>(write: (a: A, b: B, c: C) => boolean, a: A, b: B, c: C): string | null {
  for (;;) {
    pos = 0;
    try {
      if (!write(a, b, c)) return null;
    } catch (error) {
      if (error !== FULL) throw error;
      // A spec this large is rare: the general encoder takes it, and the buffer stays small.
      if (buf.length >= MAX_BUFFER) return null;
      buf = Buffer.allocUnsafe(buf.length * 2);
      continue;
    }
    return buf.toString('base64', 0, pos);
  }
}

/** Thrown when the buffer is too small: the spec is written again into a larger one. */
const FULL = new Error('spec buffer full');

function room(n: number): void {
  if (pos + n > buf.length) throw FULL;
}

function writeSpec(spec: TaskSpec, key: string | undefined, dependencies: readonly string[] | undefined): boolean {
  const node = spec.node;
  header();
  arrayHeader(node.steps.length);
  const single = node.steps.length === 1;
  for (const step of node.steps) {
    const depsBeside = single && key !== undefined && dependencies !== undefined && theTasks(step.deps, dependencies, key);
    if (!writeStep(step, key !== undefined, depsBeside)) return false;
  }
  if (key !== undefined && node.stepKeys.length === 1 && node.stepKeys[0] === key) nil();
  else if (!strings(node.stepKeys)) return false;
  room(1);
  buf[pos++] = node.out ? 0xc3 : 0xc2;
  return true;
}

function writeCall(args: readonly unknown[]): boolean {
  header();
  arrayHeader(1);
  arrayHeader(4);
  nil();
  arrayHeader(0);
  if (!writeArgs(args, null)) return false;
  nil();
  nil();
  room(1);
  buf[pos++] = 0xc3;
  return true;
}

function nil(): void {
  room(1);
  buf[pos++] = 0xc0;
}

/** The list of the node's three fields, which follow. */
function header(): void {
  arrayHeader(3);
}

function writeStep(step: WireStep, fnBeside: boolean, depsBeside: boolean): boolean {
  if (step.deepRefs !== null || typeof step.fn !== 'string') return false;
  arrayHeader(4);
  if (fnBeside) nil();
  else str(step.fn);
  if (depsBeside) nil();
  else if (!strings(step.deps)) return false;
  if (!writeArgs(step.args, step.argRefs)) return false;
  const refs = step.argRefs;
  if (refs === null) {
    room(1);
    buf[pos++] = 0xc0;
  } else {
    arrayHeader(refs.length);
    for (const r of refs) num(r);
  }
  return true;
}

/** The arguments, each a number, string, boolean, null or a ref that `refs` fills; false for anything else. */
function writeArgs(args: readonly unknown[], refs: readonly number[] | null): boolean {
  arrayHeader(args.length);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    switch (typeof arg) {
      case 'number':
        num(arg);
        break;
      case 'string':
        str(arg);
        break;
      case 'boolean':
        room(1);
        buf[pos++] = arg ? 0xc3 : 0xc2;
        break;
      case 'object':
        if (arg === null) {
          room(1);
          buf[pos++] = 0xc0;
        } else if (arg instanceof Ref && isRefSite(refs, i)) {
          // Nil: the call puts its dependency's value here (argRefs), and the key is in deps.
          room(1);
          buf[pos++] = 0xc0;
        } else return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Most dependencies a step may leave to its task (checked for repeats pairwise). */
const MAX_DEPS_BESIDE = 16;

/**
 * Whether a step's dependencies are its task's as the scheduler and the worker keep them
 * (`dependencies`): the same keys in order, none of them twice nor the task's own `key`,
 * which both would drop. None is not worth leaving out.
 */
function theTasks(deps: readonly string[], dependencies: readonly string[], key: string): boolean {
  const n = deps.length;
  if (n === 0 || n > MAX_DEPS_BESIDE || dependencies.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const d = deps[i];
    if (d !== dependencies[i] || d === key) return false;
    for (let j = 0; j < i; j++) if (deps[j] === d) return false;
  }
  return true;
}

/** Whether argument `i` is one that argRefs (pairs of argument, dependency) fills. */
function isRefSite(refs: readonly number[] | null, i: number): boolean {
  if (refs === null) return false;
  for (let k = 0; k < refs.length; k += 2) if (refs[k] === i) return true;
  return false;
}

function strings(list: readonly string[]): boolean {
  arrayHeader(list.length);
  for (const s of list) {
    if (typeof s !== 'string') return false;
    str(s);
  }
  return true;
}

function arrayHeader(n: number): void {
  room(5);
  if (n < 16) buf[pos++] = 0x90 | n;
  else if (n < 0x10000) tagged(0xdc, n, 2);
  else tagged(0xdd, n, 4);
}

/** A tag byte, then the unsigned `n` in `size` bytes, big-endian. */
function tagged(tag: number, n: number, size: 1 | 2 | 4): void {
  buf[pos++] = tag;
  if (size === 1) buf[pos++] = n;
  else if (size === 2) buf.writeUInt16BE(n, pos);
  else buf.writeUInt32BE(n, pos);
  if (size !== 1) pos += size;
}

/** A str header for `bytes` bytes of UTF-8 (room made by the caller). */
function strHeader(bytes: number): void {
  if (bytes < 32) buf[pos++] = 0xa0 | bytes;
  else if (bytes < 0x100) tagged(0xd9, bytes, 1);
  else if (bytes < 0x10000) tagged(0xda, bytes, 2);
  else tagged(0xdb, bytes, 4);
}

function num(n: number): void {
  room(9);
  if ((n | 0) === n && !Object.is(n, -0)) {
    if (n >= 0) {
      if (n < 0x80) buf[pos++] = n;
      else if (n < 0x100) tagged(0xcc, n, 1);
      else if (n < 0x10000) tagged(0xcd, n, 2);
      else tagged(0xce, n, 4);
    } else if (n >= -0x20) buf[pos++] = n & 0xff;
    else if (n >= -0x80) {
      buf[pos++] = 0xd0;
      buf.writeInt8(n, pos);
      pos += 1;
    } else if (n >= -0x8000) {
      buf[pos++] = 0xd1;
      buf.writeInt16BE(n, pos);
      pos += 2;
    } else {
      buf[pos++] = 0xd2;
      buf.writeInt32BE(n, pos);
      pos += 4;
    }
    return;
  }
  buf[pos++] = 0xcb;
  buf.writeDoubleBE(n, pos);
  pos += 8;
}

function str(s: string): void {
  const n = s.length;
  // ASCII, the common case, byte by byte; anything else through Buffer's UTF-8 writer.
  let ascii = n < 256;
  if (ascii) {
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
  }
  if (ascii) {
    room(n + 2);
    strHeader(n);
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    return;
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  room(bytes + 5);
  strHeader(bytes);
  pos += buf.write(s, pos, 'utf8');
}
