/**
 * Whether a result can travel over the wire: the codec refuses values nested deeper than
 * it allows (a self-referencing object is infinitely deep) and messages past the frame
 * limit. Found when the task finishes, such a result fails its task once, naming the key
 * and the reason, instead of every request for it failing and being asked again forever.
 */
import { MAX_DEPTH } from '../comm/codec.js';

// The value sits a few levels down in the message that carries it (the message, its
// list of values, the key-value pair): room for those.
const VALUE_DEPTH = MAX_DEPTH - 16;

export interface TravelProblem {
  /** Where in the value, as `.a[3].b` ('' for the value itself). */
  readonly path: string;
  readonly reason: string;
}

/**
 * Why `value` cannot travel in a message of at most `maxBytes`, or null when it can.
 * Walks the value once; binary data is counted (exactly: it travels as it is), not looked
 * into. Other data is not sized: an estimate could refuse what would fit.
 */
export function travelProblem(value: unknown, maxBytes: number): TravelProblem | null {
  if (typeof value !== 'object' || value === null) return null;
  const binary = { bytes: 0 };
  const problem = walk(value, '', 0, new Set(), new Map(), binary);
  if (problem !== null) return problem;
  if (binary.bytes > maxBytes) {
    return { path: '', reason: `holds ${binary.bytes} bytes of binary data, more than the ${maxBytes}-byte limit of a message between processes` };
  }
  return null;
}

/** `open`: objects on the path from the root (a cycle returns to one); `heights`: depth below objects already walked. */
function walk(value: object, path: string, depth: number, open: Set<object>, heights: Map<object, number>, binary: { bytes: number }): TravelProblem | null {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    binary.bytes += value.byteLength;
    return null;
  }
  if (value instanceof Date) return null;
  if (open.has(value)) return { path, reason: 'refers back to an object that contains it (a cycle), which cannot be written as a message' };
  const known = heights.get(value);
  if (known !== undefined) return depth + known > VALUE_DEPTH ? tooDeep(path) : null;
  if (depth > VALUE_DEPTH) return tooDeep(path);
  open.add(value);
  let height = 0;
  const visit = (child: unknown, childPath: string): TravelProblem | null => {
    if (typeof child !== 'object' || child === null) return null;
    const problem = walk(child, childPath, depth + 1, open, heights, binary);
    if (problem === null) height = Math.max(height, 1 + (heights.get(child) ?? 0));
    return problem;
  };
  let problem: TravelProblem | null = null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && problem === null; i++) problem = visit(value[i], `${path}[${i}]`);
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      problem = visit(k, `${path}<map key>`) ?? visit(v, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : String(k)})`);
      if (problem !== null) break;
    }
  } else if (value instanceof Set) {
    for (const v of value) if ((problem = visit(v, `${path}<set member>`)) !== null) break;
  } else {
    for (const k of Object.keys(value)) if ((problem = visit((value as Record<string, unknown>)[k], `${path}.${k}`)) !== null) break;
  }
  open.delete(value);
  heights.set(value, height);
  return problem;
}

function tooDeep(path: string): TravelProblem {
  return { path, reason: `nests deeper than the ${VALUE_DEPTH} levels a message between processes may have` };
}
