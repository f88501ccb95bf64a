/**
 * What every worker process Tessera starts has in its environment beyond its launcher's:
 * glibc told to back large allocations with transparent huge pages, as NumPy does for its
 * arrays. A worker's large values — frames received from a peer, typed arrays its tasks
 * make, the copies its threads are handed — land in fresh memory, and the first touch of
 * each 4 KiB page is a fault: 16,384 of them for 64 MiB, which bound a fetch well below
 * what the socket can carry. With huge pages that is 32 faults.
 *
 * ```ts
 * spawn(process.execPath, [entry, 'worker', address], { env: { ...process.env, GLIBC_TUNABLES: withHugePages(process.env['GLIBC_TUNABLES']) } });
 * ```
 *
 * Only glibc reads the variable, once, when the process starts (musl and other systems
 * ignore it), and only mappings of 2 MiB or more are asked for huge pages. A
 * GLIBC_TUNABLES that already says `glibc.malloc.hugetlb` is kept as it is:
 * `glibc.malloc.hugetlb=0` turns this off.
 */

/** The tunable: madvise(MADV_HUGEPAGE) on what malloc maps, when the kernel's THP mode is `madvise`. */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** `GLIBC_TUNABLES` with the huge-pages tunable added, unless it already sets one of its own. */
export function withHugePages(tunables: string | undefined): string {
  if (tunables === undefined || tunables === '') return HUGE_PAGES_TUNABLE;
  if (tunables.split(':').some((t) => t.startsWith('glibc.malloc.hugetlb='))) return tunables;
  return `${tunables}:${HUGE_PAGES_TUNABLE}`;
}
