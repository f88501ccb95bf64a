// The worker core's decisions, one at a time: how ready tasks are batched, what happens
// to a batch that fails or whose thread dies, which holder is asked for what and how many
// at once, what is kept and what is dropped, and the story it tells.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TaskDependency, WorkerEvent, WorkerInstruction } from '../../src/worker/events.js';
import { MAX_BATCH, WorkerState, type WorkerStateOptions } from '../../src/worker/state.js';
import { InvalidArgumentError, ProtocolError } from '../../src/errors.js';
import { encodeSpec } from '../../src/protocol/encoded-spec.js';
import { SELF_HOLDER } from '../../src/protocol/messages.js';
import { spec } from './helpers.js';

/** An event without its time: the helper below adds it. */
type Untimed<E> = E extends unknown ? Omit<E, 'now'> & { now?: number } : never;

const ME = 'tcp://me:1';
const A = 'tcp://a:1';
const B = 'tcp://b:1';
const C = 'tcp://c:1';

/** A core that validates itself after every event, and helpers to drive it. */
function core(options: Partial<WorkerStateOptions> = {}) {
  const s = new WorkerState({ id: ME, nthreads: 1, validate: true, random: () => 0.99, ...options });
  let now = 0;
  const send = (e: Untimed<WorkerEvent>): readonly WorkerInstruction[] => s.handle({ now: ++now, ...e });
  const compute = (key: string, dependencies: readonly TaskDependency[] = [], stimulus?: string): readonly WorkerInstruction[] =>
    send({ op: 'compute-task', key, spec: spec(key), dependencies, ...(stimulus === undefined ? {} : { stimulus }) });
  const pump = (): readonly WorkerInstruction[] => send({ op: 'pump' });
  return { s, send, compute, pump };
}

function only<Op extends WorkerInstruction['op']>(out: readonly WorkerInstruction[], op: Op): Extract<WorkerInstruction, { op: Op }>[] {
  return out.filter((i): i is Extract<WorkerInstruction, { op: Op }> => i.op === op);
}

const batchKeys = (out: readonly WorkerInstruction[]): string[][] => only(out, 'execute').map((e) => e.tasks.map((t) => t.key));

void describe('batching', () => {
  void test('nothing runs before the pump; then batches sized by what is ready, two per thread', () => {
    const { s, compute, pump } = core({ nthreads: 2 });
    for (let i = 0; i < 10; i++) assert.deepEqual(compute(`t${i}`), []);
    assert.equal(s.count('ready'), 10);
    assert.ok(s.wantsPump);
    const batches = batchKeys(pump());
    // ceil(10 / 4) = 3, then ceil(7 / 4), ceil(5 / 4), ceil(3 / 4): four batches in flight at most.
    assert.deepEqual(batches, [['t0', 't1', 't2'], ['t3', 't4'], ['t5', 't6'], ['t7']]);
    assert.equal(s.count('running'), 8);
    assert.equal(s.count('ready'), 2);
    assert.equal(s.wantsPump, false);
  });

  void test('a batch never exceeds MAX_BATCH', () => {
    const { compute, pump } = core();
    for (let i = 0; i < 3 * MAX_BATCH; i++) compute(`t${i}`);
    const sizes = batchKeys(pump()).map((b) => b.length);
    assert.deepEqual(sizes, [MAX_BATCH, MAX_BATCH]);
  });

  void test('a finished batch stores and reports each result with its own times; the next batch starts', () => {
    const { s, send, compute, pump } = core();
    for (let i = 0; i < 4; i++) compute(`t${i}`);
    const [first] = only(pump(), 'execute');
    assert.deepEqual(first!.tasks.map((t) => t.key), ['t0', 't1']);
    const out = send({ op: 'batch-done', batch: first!.batch, thread: 0, values: [1, 'two'], times: [10, 310, 310, 311] });
    assert.deepEqual(
      only(out, 'task-finished').map((f) => [f.key, f.startedAt, f.finishedAt]),
      [
        ['t0', 10, 310],
        ['t1', 310, 311],
      ],
    );
    assert.deepEqual(only(out, 'store').map((i) => [i.key, i.value]), [['t0', 1], ['t1', 'two']]);
    // The freed slot is used at once.
    assert.deepEqual(batchKeys(out), [['t3']]);
    assert.equal(s.tasksFinishedTotal, 2);
    assert.equal(s.taskSecondsTotal, 0.301);
  });

  void test('a failed task errs; the rest of its batch runs again, ahead of later tasks', () => {
    const { s, send, compute, pump } = core();
    for (let i = 0; i < 6; i++) compute(`t${i}`);
    const [first] = only(pump(), 'execute');
    assert.deepEqual(first!.tasks.map((t) => t.key), ['t0', 't1', 't2']);
    const error = { kind: 'task', name: 'Error', message: 'boom', stack: '', key: 't1' } as const;
    const out = send({ op: 'batch-task-failed', batch: first!.batch, key: 't1', error });
    assert.deepEqual(only(out, 'task-erred'), [{ op: 'task-erred', key: 't1', error }]);
    assert.equal(s.stateOf('t1'), undefined);
    assert.equal(s.tasksErredTotal, 1);
    // t0 and t2 go first: the failure was not theirs.
    assert.deepEqual(batchKeys(out)[0]!.slice(0, 2), ['t0', 't2']);
  });

  void test('a thread that dies under several tasks: each runs alone; one that dies alone errs as worker-lost', () => {
    const { send, compute, pump } = core();
    for (let i = 0; i < 4; i++) compute(`t${i}`);
    const [first, second] = only(pump(), 'execute');
    assert.deepEqual(first!.tasks.map((t) => t.key), ['t0', 't1']);
    let out = send({ op: 'batch-thread-died', batch: first!.batch, message: 'thread exited with code 1' });
    assert.deepEqual(only(out, 'task-erred'), []);
    // The second batch is still in flight, so one slot: t0 alone.
    assert.deepEqual(batchKeys(out), [['t0']]);
    out = send({ op: 'batch-done', batch: second!.batch, thread: 0, values: [2, 3], times: [0, 1, 1, 2] });
    assert.deepEqual(batchKeys(out), [['t1']]);
    const alone = only(out, 'execute')[0]!;
    out = send({ op: 'batch-thread-died', batch: alone.batch, message: 'thread exited with code 1' });
    assert.deepEqual(
      only(out, 'task-erred').map((e) => [e.key, e.error.kind, e.error.name]),
      [['t1', 'worker-lost', 'WorkerLostError']],
    );
  });

  void test('a batch that cannot start errs its tasks with the cause', () => {
    const { send, compute, pump } = core();
    compute('t0');
    const [batch] = only(pump(), 'execute');
    const out = send({ op: 'batch-unrunnable', batch: batch!.batch, error: { name: 'BundleError', message: 'no module', stack: '' } });
    assert.deepEqual(only(out, 'task-erred').map((e) => [e.key, e.error.kind, e.error.name]), [['t0', 'task', 'BundleError']]);
  });

  void test('a task freed while it runs: its result is dropped, not reported', () => {
    const { s, send, compute, pump } = core();
    compute('t0');
    const [batch] = only(pump(), 'execute');
    send({ op: 'free-keys', keys: ['t0'] });
    const out = send({ op: 'batch-done', batch: batch!.batch, thread: 0, values: [1], times: [0, 1] });
    assert.deepEqual(only(out, 'store'), []);
    assert.deepEqual(only(out, 'task-finished'), []);
    assert.equal(s.stateOf('t0'), undefined);
  });

  void test('a value the result store held already replaces the one here, with its size, and the story says why', () => {
    const { s, send, compute, pump } = core();
    compute('t0');
    const [batch] = only(pump(), 'execute');
    send({ op: 'batch-done', batch: batch!.batch, thread: 0, values: [0.25], times: [0, 1] });
    const out = send({ op: 'store-kept', key: 't0', value: 'a longer value, written first', stimulus: 'store-kept-t0' });
    const [stored] = only(out, 'store');
    assert.equal(stored?.value, 'a longer value, written first');
    assert.ok(stored.nbytes > 8, `nbytes ${stored.nbytes}`);
    assert.deepEqual(only(out, 'task-finished'), [], 'reported once, by the shell, after the write');
    assert.equal(s.stateOf('t0'), 'memory');
    assert.ok(s.story('t0').some((e) => e.stimulus === 'store-kept-t0' && e.from === 'memory' && e.to === 'memory'));
    // Freed meanwhile: nothing to replace.
    send({ op: 'free-keys', keys: ['t0'] });
    assert.deepEqual(send({ op: 'store-kept', key: 't0', value: 1 }), []);
    assert.equal(s.stateOf('t0'), undefined);
  });

  void test('a tail taken back for an idle thread is ready again and goes out anew; the batch answers for its head', () => {
    const { s, send, compute, pump } = core({ nthreads: 2 });
    for (let i = 0; i < 8; i++) compute(`t${i}`);
    let pending = only(pump(), 'execute');
    const first = pending[0]!;
    assert.deepEqual(first.tasks.map((t) => t.key), ['t0', 't1']);
    // Every other batch ends (and the next go out, and end); the first still runs its first task.
    while ((pending = pending.filter((b) => b !== first)).length > 0) {
      pending = pending.flatMap((b) => only(send({ op: 'batch-done', batch: b.batch, thread: 1, values: b.tasks.map(() => 0), times: b.tasks.flatMap(() => [0, 1]) }), 'execute'));
    }
    assert.equal(s.count('ready'), 0);
    assert.ok(s.wantsTail);
    const out = send({ op: 'batch-cut', batch: first.batch, cut: 1 });
    assert.deepEqual(batchKeys(out), [['t1']], 't1 goes out again, alone');
    assert.equal(s.count('running'), 2);
    // The first batch's thread ran t0 only; t1's own batch reports it.
    const head = send({ op: 'batch-done', batch: first.batch, thread: 0, values: ['zero'], times: [0, 5] });
    assert.deepEqual(only(head, 'task-finished').map((f) => f.key), ['t0']);
    const tail = send({ op: 'batch-done', batch: only(out, 'execute')[0]!.batch, thread: 1, values: ['one'], times: [1, 2] });
    assert.deepEqual(only(tail, 'task-finished').map((f) => f.key), ['t1']);
    assert.equal(s.count('memory'), 8);
  });

  void test('a cut that names no batch, or no task of it, changes nothing', () => {
    const { s, send, compute, pump } = core({ nthreads: 2 });
    for (let i = 0; i < 4; i++) compute(`t${i}`);
    const [first] = only(pump(), 'execute');
    for (const [batch, cut] of [[first!.batch + 100, 0], [first!.batch, 1], [first!.batch, 5], [first!.batch, -1], [first!.batch, Number.NaN]] as const) {
      assert.deepEqual(send({ op: 'batch-cut', batch, cut }), []);
    }
    assert.equal(s.count('running'), 4);
  });
});

void describe('fetching', () => {
  void test('holders are tried in turn; each miss is told; with none left the key is missing until a holder is named', () => {
    // random() = 0.99 keeps holders in the order given.
    const { s, send, compute, pump } = core();
    compute('t', [['d', [A, B]]]);
    assert.equal(s.stateOf('t'), 'waiting');
    let out = pump();
    assert.deepEqual(only(out, 'gather').map((g) => [g.holder, g.keys]), [[A, ['d']]]);
    out = send({ op: 'gather-done', request: only(out, 'gather')[0]!.request, values: [] });
    assert.deepEqual(only(out, 'missing-data'), [{ op: 'missing-data', key: 'd', from: A }]);
    assert.deepEqual(only(out, 'gather').map((g) => g.holder), [B]);
    out = send({ op: 'gather-done', request: only(out, 'gather')[0]!.request, values: [] });
    assert.deepEqual(only(out, 'missing-data'), [{ op: 'missing-data', key: 'd', from: B }]);
    assert.equal(s.stateOf('d'), 'missing');
    assert.equal(s.wantsPump, false);
    // Asked again with a holder it did not know.
    compute('t', [['d', [C]]]);
    out = pump();
    assert.deepEqual(only(out, 'gather').map((g) => g.holder), [C]);
    out = send({ op: 'gather-done', request: only(out, 'gather')[0]!.request, values: [['d', 41]] });
    assert.deepEqual(only(out, 'add-keys'), [{ op: 'add-keys', keys: ['d'] }]);
    assert.equal(s.stateOf('t'), 'ready');
    assert.equal(s.transfersTotal, 1);
    assert.deepEqual(batchKeys(pump()), [['t']]);
  });

  void test('one request per holder for all the keys it is asked for; at most maxRequests at once', () => {
    const { s, send, compute, pump } = core({ maxRequests: 2 });
    compute('t1', [['a1', [A]], ['a2', [A]], ['b1', [B]]]);
    compute('t2', [['c1', [C]], ['a3', [A]]]);
    let out = pump();
    assert.deepEqual(only(out, 'gather').map((g) => [g.holder, g.keys]), [[A, ['a1', 'a2', 'a3']], [B, ['b1']]]);
    assert.equal(s.stateOf('c1'), 'fetch');
    assert.equal(s.requestsInFlight, 2);
    // An answer frees a request: C is asked at once.
    out = send({ op: 'gather-done', request: only(out, 'gather')[1]!.request, values: [['b1', 1]] });
    assert.deepEqual(only(out, 'gather').map((g) => [g.holder, g.keys]), [[C, ['c1']]]);
  });

  void test('the holder list is shuffled to spread load, and never includes the worker itself', () => {
    const { s, compute, pump } = core({ random: () => 0 });
    const out = compute('t', [['d', [A, B, ME]]]);
    // Said to hold it, and does not: the scheduler hears so.
    assert.deepEqual(only(out, 'missing-data'), [{ op: 'missing-data', key: 'd', from: ME }]);
    assert.deepEqual(only(pump(), 'gather').map((g) => g.holder), [B]);
    assert.equal(s.stateOf('d'), 'flight');
  });

  void test('the worker itself named as SELF_HOLDER is itself: said to hold it, and does not, it says so', () => {
    const { s, compute } = core();
    const out = compute('t', [['d', [SELF_HOLDER]]]);
    assert.deepEqual(only(out, 'missing-data'), [{ op: 'missing-data', key: 'd', from: ME }]);
    assert.equal(s.stateOf('d'), 'missing');
  });

  void test('a dependency named by its key alone is said to be here; when it is not, the worker says so', () => {
    const { s, compute } = core();
    const out = compute('t', ['d']);
    assert.deepEqual(only(out, 'missing-data'), [{ op: 'missing-data', key: 'd', from: ME }]);
    assert.equal(s.stateOf('d'), 'missing');
  });

  void test('a compute whose dependency is neither a key nor [key, holders] is refused, and changes nothing', () => {
    const { s, send } = core();
    for (const bad of [7, ['d'], ['d', 'tcp://a:1'], [3, [A]], null]) {
      assert.throws(() => send({ op: 'compute-task', key: 't', spec: spec('t'), dependencies: [bad as never] }), ProtocolError, JSON.stringify(bad));
      assert.equal(s.stateOf('t'), undefined);
      assert.equal(s.stateOf('d'), undefined);
    }
  });

  void test('a batch names the functions its tasks call: as the scheduler said, or read from the spec', () => {
    const { send, pump } = core();
    const told = encodeSpec({ node: { steps: [{ fn: 'src:a', deps: [], args: [1], argRefs: null, deepRefs: null }], stepKeys: ['t1'], out: true } })!;
    const untold = encodeSpec({ node: { steps: [{ fn: 'src:b', deps: [], args: [2], argRefs: null, deepRefs: null }], stepKeys: ['t2'], out: true } })!;
    send({ op: 'compute-task', key: 't1', spec: told, dependencies: [], fns: ['src:a'] });
    send({ op: 'compute-task', key: 't2', spec: untold, dependencies: [] });
    const tasks = only(pump(), 'execute').flatMap((e) => e.tasks);
    assert.deepEqual(tasks.map((t) => [t.key, t.spec, t.fns]), [['t1', told, ['src:a']], ['t2', untold, ['src:b']]]);
  });

  void test('data that arrives after its task was released is dropped', () => {
    const { s, send, compute, pump } = core();
    compute('t', [['d', [A]]]);
    const [gather] = only(pump(), 'gather');
    send({ op: 'free-keys', keys: ['t'] });
    assert.equal(s.stateOf('d'), undefined);
    const out = send({ op: 'gather-done', request: gather!.request, values: [['d', 1]] });
    assert.deepEqual(out, []);
  });

  void test('a dependency freed while a task here still waits for it stays until that task ran', () => {
    const { s, send, compute, pump } = core();
    compute('a');
    const [first] = only(pump(), 'execute');
    send({ op: 'batch-done', batch: first!.batch, thread: 0, values: [1], times: [0, 1] });
    compute('b', [['a', [ME]]]);
    send({ op: 'free-keys', keys: ['a'] });
    assert.equal(s.stateOf('a'), 'memory');
    const [second] = only(pump(), 'execute');
    assert.deepEqual(second!.inputs, ['a']);
    const out = send({ op: 'batch-done', batch: second!.batch, thread: 0, values: [2], times: [1, 2] });
    assert.deepEqual(only(out, 'delete-data'), [{ op: 'delete-data', key: 'a' }]);
    assert.equal(s.stateOf('a'), undefined);
  });

  void test('a key being fetched that the scheduler wants computed here is computed', () => {
    const { s, send, compute, pump } = core();
    compute('t', [['d', [A]]]);
    const [gather] = only(pump(), 'gather');
    compute('d');
    assert.equal(s.stateOf('d'), 'ready');
    // The fetch wins the race: the data is taken as the result.
    const out = send({ op: 'gather-done', request: gather!.request, values: [['d', 5]] });
    assert.deepEqual(only(out, 'task-finished').map((f) => f.key), ['d']);
    assert.equal(s.stateOf('t'), 'ready');
  });
});

void describe('requests from the scheduler', () => {
  void test('steal: what has not started is given up, what runs is kept', () => {
    const { s, send, compute, pump } = core();
    compute('r');
    pump();
    compute('w', [['d', [A]]]);
    compute('q');
    assert.deepEqual(send({ op: 'steal-request', key: 'r' }), [{ op: 'steal-response', key: 'r', accepted: false }]);
    assert.deepEqual(send({ op: 'steal-request', key: 'q' }), [{ op: 'steal-response', key: 'q', accepted: true }]);
    assert.deepEqual(send({ op: 'steal-request', key: 'w' }), [{ op: 'steal-response', key: 'w', accepted: true }]);
    // Its dependency was wanted by nobody else: not fetched any more.
    assert.equal(s.stateOf('d'), undefined);
    assert.deepEqual(send({ op: 'steal-request', key: 'nobody' }), [{ op: 'steal-response', key: 'nobody', accepted: false }]);
  });

  void test('steal: a task waiting in a batch goes when the shell cut the batch before it; the rest runs again here', () => {
    const { s, send, compute, pump } = core({ nthreads: 2 });
    for (let i = 0; i < 16; i++) compute(`t${i}`);
    const batches = only(pump(), 'execute');
    assert.equal(batches.length, 4, 'two per thread');
    const [first, , , last] = batches;
    assert.deepEqual(first!.tasks.map((t) => t.key), ['t0', 't1', 't2', 't3']);
    assert.deepEqual(s.batched('t2'), { batch: first!.batch, index: 2 });
    assert.equal(s.batched('nobody'), null);
    // Not cut (its thread may have got there): kept.
    assert.deepEqual(send({ op: 'steal-request', key: 't2' }), [{ op: 'steal-response', key: 't2', accepted: false }]);
    const out = send({ op: 'steal-request', key: 't2', cut: { batch: first!.batch, cut: 2 } });
    assert.deepEqual(out, [{ op: 'steal-response', key: 't2', accepted: true }], 'four batches in flight: t3 waits, ready');
    assert.equal(s.stateOf('t2'), undefined);
    assert.equal(s.stateOf('t3'), 'ready');
    assert.equal(s.batched('t2'), null);
    // The batch's thread answers for its head only; then t3 goes out again, first.
    const head = send({ op: 'batch-done', batch: first!.batch, thread: 0, values: [0, 1], times: [0, 1, 1, 2] });
    assert.deepEqual(only(head, 'task-finished').map((f) => f.key), ['t0', 't1']);
    assert.equal(batchKeys(head)[0]![0], 't3');
    // A batch still queued for its thread can be cut whole: it is over, and the rest of it
    // runs in others.
    const [stolen, ...rest] = last!.tasks.map((t) => t.key);
    const whole = send({ op: 'steal-request', key: stolen!, cut: { batch: last!.batch, cut: 0 } });
    assert.deepEqual(only(whole, 'steal-response'), [{ op: 'steal-response', key: stolen!, accepted: true }]);
    assert.deepEqual(batchKeys(whole).flat().filter((k) => rest.includes(k)), rest);
    for (const key of rest) assert.notEqual(s.batched(key)?.batch, last!.batch);
  });

  void test('replicate: fetched and announced; a key already here is announced at once', () => {
    const { send, compute, pump } = core();
    compute('x');
    const [batch] = only(pump(), 'execute');
    send({ op: 'batch-done', batch: batch!.batch, thread: 0, values: [1], times: [0, 1] });
    let out = send({ op: 'replicate', keys: [['x', [A]], ['y', [A]]] });
    assert.deepEqual(only(out, 'add-keys'), [{ op: 'add-keys', keys: ['x'] }]);
    out = pump();
    const [gather] = only(out, 'gather');
    assert.deepEqual(gather!.keys, ['y']);
    out = send({ op: 'gather-done', request: gather!.request, values: [['y', 2]] });
    assert.deepEqual(only(out, 'add-keys'), [{ op: 'add-keys', keys: ['y'] }]);
  });

  void test('put-data stores and answers with sizes; compute of a key already here reports it finished', () => {
    const { s, send, compute } = core();
    const out = send({ op: 'put-data', id: 7, items: [['s', 1]] });
    assert.deepEqual(only(out, 'put-data-done'), [{ op: 'put-data-done', id: 7, nbytes: [8] }]);
    assert.equal(s.stateOf('s'), 'memory');
    assert.deepEqual(only(compute('s'), 'task-finished').map((f) => [f.key, f.nbytes]), [['s', 8]]);
  });

  void test('pause past the threshold and back, told once each; retire asked once', () => {
    const { s, send } = core({ memoryPause: 100 });
    assert.deepEqual(send({ op: 'memory-sample', process: 50 }), []);
    assert.deepEqual(send({ op: 'memory-sample', process: 150 }), [{ op: 'worker-status', status: 'paused', process: 150 }]);
    assert.deepEqual(send({ op: 'memory-sample', process: 160 }), []);
    assert.ok(s.paused);
    assert.deepEqual(send({ op: 'memory-sample', process: 90 }), [{ op: 'worker-status', status: 'running', process: 90 }]);
    assert.deepEqual(send({ op: 'retire' }), [{ op: 'retire' }]);
    assert.deepEqual(send({ op: 'retire' }), []);
    assert.ok(s.retiring);
  });
});

void describe('story', () => {
  void test('each transition carries the stimulus of the event behind it; made up when the event has none', () => {
    const { s, send, compute, pump } = core();
    compute('t', [], 'compute-task-from-scheduler-1');
    const [batch] = only(pump(), 'execute');
    send({ op: 'batch-done', batch: batch!.batch, thread: 0, values: [1], times: [0, 1] });
    send({ op: 'free-keys', keys: ['t'], stimulus: 'release-7' });
    const story = s.story('t');
    assert.deepEqual(
      story.map((e) => [e.from, e.to]),
      [
        ['released', 'ready'],
        ['ready', 'running'],
        ['running', 'memory'],
        ['memory', 'released'],
      ],
    );
    assert.equal(story[0]!.stimulus, 'compute-task-from-scheduler-1');
    assert.match(story[1]!.stimulus, /^pump-\d+$/);
    assert.match(story[2]!.stimulus, /^batch-done-\d+$/);
    assert.equal(story[3]!.stimulus, 'release-7');
    for (const e of story) assert.equal(e.where, ME);
    for (let i = 1; i < story.length; i++) assert.ok(story[i]!.at > story[i - 1]!.at);
    assert.equal(s.lastStimulus, 'release-7');
  });

  void test('a fetch names the holder asked and the one the data came from', () => {
    const { s, send, compute, pump } = core();
    compute('t', [['d', [A]]]);
    const [gather] = only(pump(), 'gather');
    send({ op: 'gather-done', request: gather!.request, values: [['d', 1]] });
    assert.deepEqual(
      s.story('d').map((e) => [e.from, e.to, e.worker]),
      [
        ['released', 'fetch', undefined],
        ['fetch', 'flight', A],
        ['flight', 'memory', A],
      ],
    );
  });

  void test('the log is bounded: the newest transitions are kept', () => {
    const { s, compute } = core({ transitionLogLength: 3 });
    for (let i = 0; i < 5; i++) compute(`t${i}`);
    assert.deepEqual(s.story('t0', 't1', 't2', 't3', 't4').map((e) => e.key), ['t2', 't3', 't4']);
  });
});

void describe('options', () => {
  void test('checked at the door, naming the option', () => {
    assert.throws(() => new WorkerState({ id: '', nthreads: 1 }), InvalidArgumentError);
    assert.throws(() => new WorkerState({ id: ME, nthreads: 0 }), /options\.nthreads/);
    assert.throws(() => new WorkerState({ id: ME, nthreads: 1, maxRequests: 1.5 }), /options\.maxRequests/);
    assert.throws(() => new WorkerState({ id: ME, nthreads: 1, memoryPause: -1 }), /options\.memoryPause/);
    assert.throws(() => new WorkerState({ id: ME, nthreads: 1, transitionLogLength: -1 }), /options\.transitionLogLength/);
  });
});

void describe('tickets', () => {
  void test("a batch names its tasks by the tickets their computes carried, and each result its task's latest", () => {
    const { send, pump } = core({ nthreads: 1 });
    send({ op: 'compute-task', key: 't0', spec: spec('t0'), dependencies: [], ticket: 7 });
    send({ op: 'compute-task', key: 't1', spec: spec('t1'), dependencies: [], ticket: 8 });
    // Asked again (a new compute of it): the new ticket is the one reported.
    send({ op: 'compute-task', key: 't1', spec: spec('t1'), dependencies: [], ticket: 9 });
    send({ op: 'compute-task', key: 't2', spec: spec('t2'), dependencies: [], ticket: 10 });
    const batches = only(pump(), 'execute');
    assert.deepEqual(batches.map((b) => b.tickets), [[7, 9], [10]]);
    const out = send({ op: 'batch-done', batch: batches[0]!.batch, thread: 0, values: [1, 2], times: [0, 1, 1, 2] });
    assert.deepEqual(only(out, 'task-finished').map((f) => [f.key, f.ticket]), [['t0', 7], ['t1', 9]]);
  });

  void test('a batch with a task that has no ticket names them all by key', () => {
    const { send, pump } = core({ nthreads: 1 });
    for (const [key, ticket] of [['t0', 0], ['t1', undefined], ['t2', 2]] as const) {
      send({ op: 'compute-task', key, spec: spec(key), dependencies: [], ...(ticket === undefined ? {} : { ticket }) });
    }
    const batches = only(pump(), 'execute');
    assert.deepEqual(batches.map((b) => [b.tasks.map((t) => t.key), b.tickets]), [[['t0', 't1'], null], [['t2'], [2]]]);
    const out = send({ op: 'batch-done', batch: batches[0]!.batch, thread: 0, values: [1, 2], times: [0, 1, 1, 2] });
    assert.deepEqual(only(out, 'task-finished').map((f) => f.ticket), [0, -1]);
  });
});
