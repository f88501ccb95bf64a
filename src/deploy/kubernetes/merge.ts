/**
 * How a user's pod template is laid over the one Tessera builds: objects merge key by key,
 * lists of named items (containers, env, ports, volumes, volumeMounts) merge by name as a
 * strategic merge patch would, other lists are replaced, and `null` removes a key.
 *
 * ```ts
 * mergeTemplate(pod, { spec: { containers: [{ name: 'worker', env: [{ name: 'A', value: '1' }] }] } });
 * // the worker container keeps its args and gains A; other containers are untouched
 * ```
 */

function isObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The list, when it is one of named items (containers, env…); undefined otherwise. */
function namedList(value: unknown): readonly Record<string, unknown>[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items: readonly unknown[] = value;
  return items.every((item) => isObject(item) && typeof item['name'] === 'string') ? (items as readonly Record<string, unknown>[]) : undefined;
}

/** `override` laid over `base`; neither is modified. */
export function mergeTemplate<T>(base: T, override: unknown): T {
  return merge(base, override) as T;
}

function merge(base: unknown, override: unknown): unknown {
  if (override === undefined) return clone(base);
  if (isObject(base) && isObject(override)) {
    const out = new Map<string, unknown>();
    for (const [key, value] of Object.entries(base)) if (value !== undefined) out.set(key, clone(value));
    for (const [key, value] of Object.entries(override)) {
      if (value === null) out.delete(key);
      else if (value !== undefined) out.set(key, merge(base[key], value));
    }
    return Object.fromEntries(out);
  }
  const baseList = namedList(base);
  const overrideList = namedList(override);
  if (baseList !== undefined && overrideList !== undefined && baseList.length > 0) {
    const out = baseList.map((item) => clone(item) as Record<string, unknown>);
    for (const item of overrideList) {
      const at = out.findIndex((existing) => existing['name'] === item['name']);
      if (at < 0) out.push(clone(item) as Record<string, unknown>);
      else out[at] = merge(out[at], item) as Record<string, unknown>;
    }
    return out;
  }
  return clone(override);
}

function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = clone(item);
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  return value;
}
