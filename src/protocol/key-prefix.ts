/**
 * A key's prefix: the name its tasks are grouped under for durations, progress and the
 * task stream, read as Dask reads it. The first word (words are split at dashes), then
 * each following word made only of letters, up to the first that is not: a number, a
 * hash or a tag ends the name. 'inc-3f2a' and 'inc-77' share 'inc'; 'load-data-0' is
 * 'load-data'; 'x-0-1' and 'tiny-7-r2' are 'x' and 'tiny'. A word of letters whose
 * first eight are hex digits ('deadbeef…') is a token too, not a name. A key with no
 * dash, or starting with one, is its own prefix.
 */
export function keyPrefix(key: string): string {
  let end = key.indexOf('-');
  if (end <= 0) return key;
  while (end < key.length && extendsName(key, end + 1)) {
    const next = key.indexOf('-', end + 1);
    if (next < 0) return key;
    end = next;
  }
  return key.slice(0, end);
}

/**
 * keyPrefix(key), given as `previous` itself when that is it: keys mostly arrive prefix by
 * prefix, and the same string then finds its records without being cut or hashed again.
 */
export function keyPrefixAfter(key: string, previous: string): string {
  return hasPrefix(key, previous) ? previous : keyPrefix(key);
}

/** Whether keyPrefix(key) is `name` and not the whole key, without cutting the key. */
export function hasPrefix(key: string, name: string): boolean {
  const n = name.length;
  if (n === 0 || key.length <= n || key.charCodeAt(n) !== DASH || !key.startsWith(name) || extendsName(key, n + 1)) return false;
  // Every word of the name after its first must be one that extends a name.
  const first = name.indexOf('-');
  if (first < 0) return true;
  if (first === 0) return false;
  for (let at = first; at >= 0; at = name.indexOf('-', at + 1)) if (!extendsName(name, at + 1)) return false;
  return true;
}

const DASH = 0x2d;
const LETTER = /\p{L}/u;

/** Whether the word of `s` from `start` to the next dash (or the end) extends a name. */
function extendsName(s: string, start: number): boolean {
  let end = s.indexOf('-', start);
  if (end < 0) end = s.length;
  if (end === start) return false;
  let hex = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      const lower = c | 0x20;
      if (lower < 0x61 || lower > 0x7a) return false;
      if (lower <= 0x66 && i - start < 8) hex++;
    } else if (!LETTER.test(s[i] as string)) return false;
  }
  return hex < 8;
}
