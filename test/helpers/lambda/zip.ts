/** Deployment packages for tests: a zip of the given files, made with yazl. */
import { ZipFile } from 'yazl';

export interface ZipEntry {
  readonly data: string | Buffer;
  /** Store without compression (for packages that must stay big). */
  readonly store?: boolean;
  /** zlib level, 1 (fast) to 9; default 6. */
  readonly level?: number;
}

export async function zipFiles(files: Readonly<Record<string, string | Buffer | ZipEntry>>): Promise<Buffer> {
  const zip = new ZipFile();
  for (const [name, value] of Object.entries(files)) {
    const entry: ZipEntry = typeof value === 'string' || Buffer.isBuffer(value) ? { data: value } : value;
    zip.addBuffer(Buffer.isBuffer(entry.data) ? entry.data : Buffer.from(entry.data), name, { compressionLevel: entry.store === true ? 0 : (entry.level ?? 6), mode: 0o100644 });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
