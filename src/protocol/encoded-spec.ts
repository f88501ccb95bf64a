/**
 * A task's spec encoded once, by its client, and carried as it is to the worker that
 * runs it: the scheduler holds and forwards it without decoding or encoding it again,
 * and holds one string per task rather than the object graph of a decoded spec.
 *
 * The spec is written with the wire's codec (comm/codec.ts) — as the compact list of
 * spec-writer.ts, or else as one message — so what the worker decodes is what the client's
 * spec was (the compact form writes a ref argument as null, which the call fills from its
 * dependency); it travels as those bytes in base64. A
 * string, not bytes: a small binary value is copied into an allocation of its own as it
 * is decoded, which for a million tasks left the scheduler's memory fragmented, while a
 * string is one object on the heap, held as it arrived. A spec whose arguments travel out
 * of band (large binary values) or cannot be encoded stays an object: it is sent as
 * before, and fails, if it must, where a message fails.
 *
 * A spec encoded in its task (`encodeSpec(spec, key, dependencies)`) leaves out what the
 * task carries beside it — its key, the ids of its functions and, for a single step, the
 * step's dependencies when they are the task's — and is decoded with them.
 *
 * ```ts
 * const encoded = encodeSpec(spec);             // a string, or null: send the object
 * if (encoded !== null) decodeSpec(encoded);    // → a TaskSpec equal to spec
 * const inTask = encodeSpec(spec, key, deps);   // less what its task says
 * if (inTask !== null) decodeSpec(inTask, fnIdsOf(spec.node), key, deps);   // → equal to spec
 * ```
 */
import { decode, decodeValue, encode } from '../comm/codec.js';
import { ProtocolError } from '../errors.js';
import { writeSpecBase64 } from './spec-writer.js';
import type { PackedNode, TaskSpec, WireNode, WireSpec, WireStep } from './task-spec.js';

export type { WireSpec };

const OP = 'spec';

/**
 * A spec encoded in its task, with what the task says beside it: its key, the ids of the
 * functions its steps call, in order, and its dependency keys. What a worker hands a thread
 * (local/pool.ts's JobNode).
 */
export type EncodedTask = readonly [spec: string, fns: readonly string[], key: string, dependencies: readonly string[]];

/** A node to run as it is handed on: the node itself or packed, or its spec encoded, alone or in its task. */
export type NodeToRun = WireNode | PackedNode | string | EncodedTask;

/**
 * The spec encoded, or null when it cannot travel as one frame (send the object). With
 * `key`, it travels in a task of that key naming its functions beside it, one per step in
 * order (and its dependency keys, when given), and leaves out what the task says
 * (spec-writer.ts): decode it with them.
 */
export function encodeSpec(spec: TaskSpec, key?: string, dependencies?: readonly string[]): string | null {
  const written = writeSpecBase64(spec, key, dependencies);
  if (written !== null) return written;
  let frames: Uint8Array[];
  try {
    frames = encode({ op: OP, node: spec.node });
  } catch {
    return null;
  }
  if (frames.length !== 1) return null;
  const bytes = frames[0] as Uint8Array;
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('base64');
}

/** The spec that encodeSpec encoded; with the task's function ids, key and dependency keys when it was encoded in its task. */
export function decodeSpec(encoded: string, fns?: readonly string[], key?: string, dependencies?: readonly string[]): TaskSpec {
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.byteLength === 0) throw new ProtocolError('an encoded task spec is empty');
  // The general encoder's message is a map; anything else is the compact list (spec-writer.ts).
  if (!isMapHead(bytes[0]!)) return { node: expand(decodeValue(bytes), fns, key, dependencies) };
  const message = decode([bytes]) as { op: string; node?: unknown };
  const node = message.node;
  if (message.op !== OP || typeof node !== 'object' || node === null) throw new ProtocolError('an encoded task spec is malformed');
  return { node: node as WireNode };
}

/**
 * The node of a compact spec (spec-writer.ts): `[steps, stepKeys, out]`, each step
 * `[fn, deps, args, argRefs]`; a nil function is the task's (`fns`, by step), nil step keys
 * the task's own `key`, nil deps (of a single step) the task's `dependencies`.
 */
function expand(n: unknown, fns: readonly string[] | undefined, key: string | undefined, dependencies: readonly string[] | undefined): WireNode {
  if (!Array.isArray(n) || n.length !== 3) throw new ProtocolError('a compact task spec is not [steps, stepKeys, out]');
  const [rows, keys, out] = n as [unknown, unknown, unknown];
  let stepKeys: string[];
  if (keys !== null) stepKeys = keys as string[];
  else if (key === undefined) throw new ProtocolError('a compact task spec leaves out its key, and no task key came with it');
  else if (!Array.isArray(rows) || rows.length !== 1) throw new ProtocolError('a compact task spec leaves out its keys, but only a single step may');
  else stepKeys = [key];
  if (!Array.isArray(rows) || !isStrings(stepKeys) || typeof out !== 'boolean') throw new ProtocolError('a compact task spec is malformed');
  const steps: WireStep[] = [];
  for (let s = 0; s < rows.length; s++) {
    const row = rows[s] as unknown;
    if (!Array.isArray(row) || row.length !== 4) throw new ProtocolError('a step of a compact task spec is not [fn, deps, args, argRefs]');
    const [named, given, args, argRefs] = row as [unknown, unknown, unknown, unknown];
    const fn = named ?? fns?.[s];
    if (fn === undefined) throw new ProtocolError(`step ${s} of a compact task spec leaves out its function, and its task names none there`);
    let deps = given;
    if (deps === null) {
      if (rows.length !== 1) throw new ProtocolError('a compact task spec leaves out a step\'s dependencies, but only a single step may');
      if (dependencies === undefined) throw new ProtocolError('a compact task spec leaves out its dependencies, and no task dependencies came with it');
      deps = dependencies;
    }
    if (typeof fn !== 'string' || !isStrings(deps) || !Array.isArray(args) || !(argRefs === null || isNumbers(argRefs))) {
      throw new ProtocolError('a step of a compact task spec is malformed');
    }
    steps.push({ fn, deps, args, argRefs, deepRefs: null });
  }
  return { steps, stepKeys, out };
}

/** A msgpack map's first byte: fixmap, map 16 or map 32. */
function isMapHead(byte: number): boolean {
  return (byte & 0xf0) === 0x80 || byte === 0xde || byte === 0xdf;
}

function isStrings(list: unknown): list is string[] {
  if (!Array.isArray(list)) return false;
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'string') return false;
  return true;
}

function isNumbers(list: unknown): list is number[] {
  if (!Array.isArray(list)) return false;
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'number') return false;
  return true;
}

/** Ids of the functions a node's steps call, in order. */
export function fnIdsOf(node: WireNode): string[] {
  const ids = new Array<string>(node.steps.length);
  for (let i = 0; i < ids.length; i++) ids[i] = node.steps[i]!.fn;
  return ids;
}

/** The node of a spec given encoded (a string, or in its task) or as the node itself. */
export function nodeOf(node: NodeToRun): WireNode {
  if (typeof node === 'string') return decodeSpec(node).node;
  if (Array.isArray(node)) {
    if (typeof node[0] === 'number') return unpackNode(node as PackedNode);
    const [spec, fns, key, dependencies] = node as EncodedTask;
    return decodeSpec(spec, fns, key, dependencies).node;
  }
  return node as WireNode;
}

const NO_DEPS: readonly string[] = [];
/** By arity: arguments that are all refs (placeholders), and the refs putting dependency k at argument k. */
const placeholders: (readonly undefined[])[] = [];
const inOrder: (readonly number[])[] = [];

function unpackNode(p: PackedNode): WireNode {
  const [arity, fn, key, out] = p;
  if (typeof fn !== 'string' || typeof key !== 'string' || !Number.isInteger(arity)) throw new ProtocolError('malformed packed node');
  if (arity < 0) {
    if (!Array.isArray(p[4])) throw new ProtocolError(`malformed packed node ${key}: no arguments`);
    return { steps: [{ fn, deps: NO_DEPS, args: p[4] as unknown[], argRefs: null, deepRefs: null }], stepKeys: [key], out: out === 1 };
  }
  if (p.length !== 4 + arity) throw new ProtocolError(`malformed packed node ${key}: ${p.length - 4} dependencies for ${arity} arguments`);
  if (inOrder[arity] === undefined) {
    placeholders[arity] = new Array<undefined>(arity).fill(undefined);
    inOrder[arity] = Array.from({ length: 2 * arity }, (_, i) => i >> 1);
  }
  const deps = p.slice(4) as string[];
  return { steps: [{ fn, deps, args: placeholders[arity]!, argRefs: inOrder[arity], deepRefs: null }], stepKeys: [key], out: out === 1 };
}

/** The spec of a wire task, decoded when it came encoded (with the task's function ids, key and dependency keys). */
export function specOf(spec: WireSpec, fns?: readonly string[], key?: string, dependencies?: readonly string[]): TaskSpec {
  return typeof spec === 'string' ? decodeSpec(spec, fns, key, dependencies) : spec;
}
