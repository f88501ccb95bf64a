// The adaptive loop with a burst backend beside the persistent one: each is told the
// connected workers, the excess goes to the burst, and only the burst's workers are retired
// through it when the work is done.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterBackend } from '../../../src/adaptive/backend.js';
import { Adaptive, type AdaptiveTarget, type ClusterView } from '../../../src/adaptive/loop.js';
import { InvalidArgumentError } from '../../../src/errors.js';

type Worker = ClusterView['workers'][number];

const worker = (name: string, processing = 0): Worker => ({ worker: `id-${name}`, name, status: 'running', nthreads: 1, processing, nbytes: 0, memoryLimit: 2 ** 30 });

class Recorder implements ClusterBackend {
  readonly ups: number[] = [];
  readonly downs: string[][] = [];
  readonly seen: string[][] = [];
  requested: number;
  running: number;
  closing = 0;
  readonly threadsPerWorker = 1;
  readonly #prefix: string;

  constructor(prefix: string, count: number) {
    this.#prefix = prefix;
    this.requested = count;
    this.running = count;
  }

  scaleUp(n: number): void {
    this.ups.push(n);
    this.requested = Math.max(this.requested, n);
  }

  scaleDown(names: readonly string[]): void {
    this.downs.push([...names]);
    this.requested -= names.length;
    this.running -= names.length;
  }

  observe(names: readonly string[]): void {
    this.seen.push([...names]);
  }

  owns(name: string): boolean {
    return name.startsWith(this.#prefix);
  }
}

void describe('adaptive loop with a burst backend', () => {
  void test('the excess goes to the burst; afterwards only burst workers are retired, through the burst', async () => {
    let view: ClusterView = {
      expectedRemainingWork: 40,
      byState: { waiting: 0, 'no-worker': 0, queued: 40, processing: 0, memory: 0 },
      workers: [worker('local-0', 1)],
      retiring: [],
    };
    const retired: string[][] = [];
    const target: AdaptiveTarget = {
      snapshot: () => view,
      holdsResults: () => true,
      retireWorkers: (names) => {
        retired.push([...names]);
        return Promise.resolve(names);
      },
    };
    const pool = new Recorder('local-', 1);
    const burst = new Recorder('lambda-', 0);
    const loop = new Adaptive(target, pool, { minimum: 1, maximum: 10, targetDuration: '5s', waitCount: 2, burst });
    await loop.tick(0);
    assert.deepEqual(burst.ups, [7], 'work of 40 s in 5 s asks for 8 workers: the pool holds 1 of them, the burst 7');
    assert.deepEqual(pool.ups, [], 'the pool is at its size');
    assert.deepEqual(burst.seen, [['local-0']]);
    assert.deepEqual(pool.seen, [['local-0']]);
    const history = loop.history();
    assert.ok(history.decisions.some((d) => d.op === 'scale-up' && d.reason.startsWith('burst:') && d.target === 7));
    // Samples are taken before acting: the next one counts both backends' requests.
    await loop.tick(500);
    assert.equal(loop.history().samples.at(-1)?.requested, 1 + 7);
    assert.deepEqual(burst.ups, [7], 'nothing more asked while the 7 are on their way');

    // The work is done; the burst's workers are idle.
    view = { expectedRemainingWork: 0, byState: { waiting: 0, 'no-worker': 0, queued: 0, processing: 0, memory: 40 }, workers: [worker('local-0'), worker('lambda-0.a'), worker('lambda-1.b')], retiring: [] };
    burst.running = 2;
    burst.requested = 2;
    for (let t = 1; t <= 3; t++) await loop.tick(t * 1000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(retired.flat().sort(), ['lambda-0.a', 'lambda-1.b']);
    assert.deepEqual(burst.downs.flat().sort(), ['lambda-0.a', 'lambda-1.b']);
    assert.deepEqual(pool.downs, [], 'the pool keeps its worker and the results');
  });

  void test('a burst backend must say which workers it owns', () => {
    const target: AdaptiveTarget = { snapshot: () => ({ expectedRemainingWork: 0, byState: { waiting: 0, 'no-worker': 0, queued: 0, processing: 0, memory: 0 }, workers: [], retiring: [] }), holdsResults: () => false, retireWorkers: () => Promise.resolve([]) };
    const plain: ClusterBackend = { scaleUp() {}, scaleDown() {}, requested: 0, running: 0, closing: 0, threadsPerWorker: 1 };
    assert.throws(() => new Adaptive(target, new Recorder('local-', 0), { burst: plain }), InvalidArgumentError);
    assert.throws(() => new Adaptive(target, new Recorder('local-', 0), { minimum: 2, persistent: 1, burst: new Recorder('lambda-', 0) }), /persistent/);
  });
});
