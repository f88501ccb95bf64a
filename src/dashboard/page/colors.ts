/**
 * A stable colour per task prefix: hashed, so the same prefix has the same colour in every
 * panel, on every reload, and on every page watching the cluster.
 */

const cache = new Map<string, string>();

export const TRANSFER_COLOR = '#d62728';
export const ERROR_COLOR = '#111111';

export function prefixColor(prefix: string): string {
  let c = cache.get(prefix);
  if (c !== undefined) return c;
  // FNV-1a: cheap and well spread for short strings.
  let h = 0x811c9dc5;
  for (let i = 0; i < prefix.length; i++) {
    h ^= prefix.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h >>>= 0;
  // Skip the reds (kept for transfers) so a prefix is never mistaken for one.
  const hue = 20 + (h % 320);
  const sat = 55 + ((h >>> 9) % 25);
  const light = 42 + ((h >>> 17) % 16);
  c = `hsl(${hue} ${sat}% ${light}%)`;
  if (cache.size > 5000) cache.clear();
  cache.set(prefix, c);
  return c;
}
