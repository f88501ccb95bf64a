/**
 * Tickets: each compute-task to a worker carries the next number of that worker's count, and
 * the worker's reports may name tasks by it. The outcome is the same as naming them by key;
 * a ticket whose compute was taken back finds nothing, never another task.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerState } from '../../src/scheduler/state.js';
import { addWorker, computes, frees, newState, only, submit } from './helpers.js';

const ticketsOf = (cmds: ReturnType<SchedulerState['handle']>): [string, number][] => only(cmds, 'compute-task').map((c) => [c.key, c.ticket]);

describe('tickets', () => {
  test('each worker numbers its computes from 0, in order, and never reuses a number', () => {
    const s = newState({ saturation: Infinity, validate: true });
    addWorker(s, 'w1');
    const first = submit(s, [['a-1'], ['a-2']], ['a-1', 'a-2']);
    assert.deepEqual(ticketsOf(first), [['a-1', 0], ['a-2', 1]]);
    // Released and asked for again: a new compute, a new number.
    s.handle({ op: 'release-keys', client: 'c1', keys: ['a-1'] });
    assert.deepEqual(ticketsOf(submit(s, [['a-1']], ['a-1'])), [['a-1', 2]]);
    // Numbers are counted per worker.
    addWorker(s, 'w2');
    const [next] = only(submit(s, [['c-1']], ['c-1']), 'compute-task');
    assert.equal(next?.ticket, next?.worker === 'w2' ? 0 : 3);
  });

  test('a report by tickets has the outcome of the same report by keys', () => {
    const graph: [string, string[]?][] = [['a-1'], ['a-2'], ['a-3'], ['b-1', ['a-1', 'a-2']], ['b-2', ['a-3']]];
    const keys = ['a-1', 'a-2', 'a-3'];
    const run = (byTicket: boolean): { s: SchedulerState; cmds: string[] } => {
      const s = newState({ saturation: Infinity, validate: true });
      addWorker(s, 'w1', 4);
      const sent = new Map(ticketsOf(submit(s, graph, ['b-1', 'b-2'])));
      const tickets = keys.map((k) => sent.get(k)!);
      s.handle(byTicket ? { op: 'tasks-started', worker: 'w1', tickets, startedAt: 1 } : { op: 'tasks-started', worker: 'w1', keys, startedAt: 1 });
      const out = s.handle({ op: 'tasks-finished', worker: 'w1', keys, ...(byTicket ? { tickets } : {}), nbytes: [8, 8, 8], startedAt: [1, 1, 1], finishedAt: [2, 2, 2], now: 2 });
      return { s, cmds: [...computes(out), ...frees(out)].sort() };
    };
    const byTicket = run(true);
    const byKey = run(false);
    assert.deepEqual(byTicket.cmds, byKey.cmds);
    assert.deepEqual(byTicket.cmds, ['b-1@w1', 'b-2@w1']);
    for (const [key] of graph) assert.deepEqual(byTicket.s.taskInfo(key), byKey.s.taskInfo(key));
  });

  test('a start named by a ticket makes its task a suspect when the worker is lost', () => {
    const s = newState({ allowedFailures: 0, saturation: Infinity, validate: true });
    addWorker(s, 'w1');
    const sent = new Map(ticketsOf(submit(s, [['deadly-1'], ['queued-1']], ['deadly-1', 'queued-1'])));
    s.handle({ op: 'tasks-started', worker: 'w1', tickets: [sent.get('deadly-1')!], startedAt: 0 });
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    assert.deepEqual(only(cmds, 'key-erred').map((e) => e.key), ['deadly-1']);
    assert.equal(s.taskInfo('queued-1')?.suspicious, 0);
  });

  test('a stale ticket finds nothing: the start is ignored and the result is judged by its key', () => {
    const s = newState({ saturation: Infinity, validate: true });
    addWorker(s, 'w1');
    const [[, old]] = ticketsOf(submit(s, [['a-1']], ['a-1'])) as [[string, number]];
    // The task is released and computed again on the same worker, under a new ticket.
    s.handle({ op: 'release-keys', client: 'c1', keys: ['a-1'] });
    const [[, fresh]] = ticketsOf(submit(s, [['a-1']], ['a-1'])) as [[string, number]];
    assert.notEqual(old, fresh);
    s.handle({ op: 'tasks-started', worker: 'w1', tickets: [old], startedAt: 0 });
    assert.equal(s.taskInfo('a-1')?.processingOn, 'w1');
    // The worker reports the old compute's result: the key still finds the task, processing here.
    const done = s.handle({ op: 'tasks-finished', worker: 'w1', keys: ['a-1'], tickets: [old], nbytes: [8], startedAt: [0], finishedAt: [1], now: 1 });
    assert.deepEqual(only(done, 'key-in-memory').map((c) => c.key), ['a-1']);
    // A ticket for another key, or none that was ever given, also falls back on the key.
    submit(s, [['b-1'], ['c-1']], ['b-1', 'c-1']);
    const mixed = s.handle({ op: 'tasks-finished', worker: 'w1', keys: ['b-1', 'c-1'], tickets: [fresh, 10_000], nbytes: [8, 8], startedAt: [1, 1], finishedAt: [2, 2], now: 2 });
    assert.deepEqual(only(mixed, 'key-in-memory').map((c) => c.key).sort(), ['b-1', 'c-1']);
    s.validate();
  });

  test('a worker answering thousands of computes out of order keeps only the tickets still out', () => {
    const s = newState({ saturation: Infinity, validate: false });
    addWorker(s, 'w1', 8);
    const keys = Array.from({ length: 5000 }, (_, i) => `t-${i}`);
    const sent = ticketsOf(submit(s, keys.map((k) => [k]), keys));
    // The first one runs long; the rest finish in reverse order.
    const [, ...rest] = sent;
    rest.reverse();
    for (let i = 0; i < rest.length; i += 100) {
      const part = rest.slice(i, i + 100);
      s.handle({ op: 'tasks-finished', worker: 'w1', keys: part.map(([k]) => k), tickets: part.map(([, t]) => t), nbytes: part.map(() => 8), startedAt: part.map(() => 0), finishedAt: part.map(() => 1), now: 1 });
    }
    assert.equal(s.stateCounts().memory, keys.length - 1);
    s.validate();
    const [first] = sent as [[string, number]];
    s.handle({ op: 'tasks-finished', worker: 'w1', keys: [first[0]], tickets: [first[1]], nbytes: [8], startedAt: [0], finishedAt: [5], now: 5 });
    assert.equal(s.stateCounts().memory, keys.length);
    s.validate();
  });
});
