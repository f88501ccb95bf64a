/**
 * Deployment packages: the checks CreateFunction makes on Code.ZipFile, and extraction into
 * the function's task root (what /var/task is in Lambda). yauzl reads the zip: it validates
 * entry names (no absolute paths, no `..`) and that each entry inflates to the size its
 * central directory claims, so the unzipped quota is enforced on the directory before a byte
 * is written.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Entry, fromBufferPromise, type ZipFile } from 'yauzl';
import { invalidParameter, tooLarge } from './errors.js';
import { UNZIPPED_CODE_LIMIT, ZIPPED_CODE_LIMIT } from './limits.js';

export interface PackageInfo {
  /** Bytes of the zip (FunctionConfiguration.CodeSize). */
  readonly codeSize: number;
  /** Base64 SHA-256 of the zip (FunctionConfiguration.CodeSha256). */
  readonly codeSha256: string;
  readonly unzippedSize: number;
}

export interface PackageLimits {
  readonly zipped: number;
  readonly unzipped: number;
}

export const DEFAULT_PACKAGE_LIMITS: PackageLimits = { zipped: ZIPPED_CODE_LIMIT, unzipped: UNZIPPED_CODE_LIMIT };

const unzipFailed = (): Error => invalidParameter('Could not unzip uploaded file. Please check your file, then try to upload again.');

async function entries(zip: ZipFile): Promise<Entry[]> {
  const all: Entry[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: Entry) => {
      all.push(entry);
      zip.readEntry();
    });
    zip.once('end', () => resolve());
    zip.once('error', reject);
    zip.readEntry();
  });
  return all;
}

/** Checks a package against the quotas and unzips it into `taskRoot` (created). Throws LambdaApiErrors. */
export async function installPackage(zipBytes: Buffer, taskRoot: string, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Promise<PackageInfo> {
  if (zipBytes.length > limits.zipped) throw tooLarge(`Zipped size must be smaller than ${limits.zipped} bytes`);
  let zip: ZipFile;
  let list: Entry[];
  try {
    zip = await fromBufferPromise(zipBytes, { lazyEntries: true, autoClose: false });
    list = await entries(zip);
  } catch {
    throw unzipFailed();
  }
  const unzippedSize = list.reduce((sum, e) => sum + e.uncompressedSize, 0);
  if (unzippedSize > limits.unzipped) {
    zip.close();
    throw invalidParameter(`Unzipped size must be smaller than ${limits.unzipped} bytes`);
  }
  mkdirSync(taskRoot, { recursive: true });
  try {
    for (const entry of list) {
      const target = join(taskRoot, entry.fileName);
      if (entry.fileName.endsWith('/')) {
        mkdirSync(target, { recursive: true });
        continue;
      }
      mkdirSync(dirname(target), { recursive: true });
      // Unix permission bits live in the high half of the external attributes when a Unix tool made the zip.
      const unixMode = (entry.externalFileAttributes >>> 16) & 0o777;
      const mode = unixMode === 0 ? 0o644 : unixMode | 0o444;
      await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(target, { mode }));
    }
  } catch {
    throw unzipFailed();
  } finally {
    zip.close();
  }
  return { codeSize: zipBytes.length, codeSha256: createHash('sha256').update(zipBytes).digest('base64'), unzippedSize };
}
