import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Client, LocalCluster } from '../../src/index.js';
import { HUGE_PAGES_TUNABLE, withHugePages } from '../../src/process/worker-env.js';

void describe('worker environment', () => {
  void test('the huge-pages tunable is added to GLIBC_TUNABLES, unless it names its own', () => {
    assert.equal(withHugePages(undefined), 'glibc.malloc.hugetlb=1');
    assert.equal(withHugePages(''), HUGE_PAGES_TUNABLE);
    assert.equal(withHugePages('glibc.malloc.arena_max=2'), 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
    assert.equal(withHugePages('glibc.malloc.hugetlb=0'), 'glibc.malloc.hugetlb=0');
    assert.equal(withHugePages('glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2'), 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2');
  });

  // glibc reads the variable at start; /proc/PID/environ shows it as glibc left it, so a task reports it.
  void test("a LocalCluster's worker processes start with it, beside their launcher's tunables, and large arrays take huge pages", async () => {
    const saved = process.env['GLIBC_TUNABLES'];
    process.env['GLIBC_TUNABLES'] = 'glibc.malloc.arena_max=4';
    try {
      await using cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false });
      await using client = await Client.connect(cluster);
      const probe = (): [string | undefined, number] => {
        const xs = new Float64Array(8 * 2 ** 20).fill(1);
        let huge: number;
        try {
          const fs = process.getBuiltinModule('node:fs');
          huge = Number(/AnonHugePages:\s+(\d+)/.exec(fs.readFileSync('/proc/self/smaps_rollup', 'latin1'))?.[1] ?? 0);
        } catch {
          huge = -1;
        }
        return [process.env['GLIBC_TUNABLES'], xs[0]! * huge];
      };
      const [tunables, hugeKiB] = await client.submit(probe).result();
      assert.equal(tunables, 'glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1');
      // Where the kernel gives huge pages on request, a 64 MiB array has some.
      const mode = readThpMode();
      if (mode === 'always' || mode === 'madvise') assert.ok(hugeKiB >= 2048, `AnonHugePages ${hugeKiB} kB in THP mode ${mode}`);
    } finally {
      if (saved === undefined) delete process.env['GLIBC_TUNABLES'];
      else process.env['GLIBC_TUNABLES'] = saved;
    }
  });
});

function readThpMode(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'latin1'))?.[1];
  } catch {
    return undefined;
  }
}
