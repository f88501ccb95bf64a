/**
 * The codec target's input format: a message's frames joined by a separator. 0xC1 is the one
 * byte msgpack never uses, so the separator cannot be confused with a header's type bytes.
 */
export const FRAME_SEPARATOR = Buffer.from([0xc1, 0x46, 0x52, 0xc1]);

/** More frames than a fuzzed message would ever need; the rest stays in the last one. */
const MAX_FRAMES = 64;

export function splitFrames(data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (frames.length < MAX_FRAMES - 1) {
    const next = data.indexOf(FRAME_SEPARATOR, at);
    if (next < 0) break;
    frames.push(data.subarray(at, next));
    at = next + FRAME_SEPARATOR.length;
  }
  frames.push(data.subarray(at));
  return frames;
}

export function joinFrames(frames: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  frames.forEach((frame, i) => {
    if (i > 0) parts.push(FRAME_SEPARATOR);
    parts.push(frame);
  });
  return Buffer.concat(parts);
}
