/**
 * The result-set card and a simulated cluster's card in the real kernel: Deno's Jupyter
 * kernel, executed by nbclient, runs test/notebook-harness/fixtures/result-set.ipynb. The
 * futures of a `map` (an Array of Futures) must be shown through their display method, as
 * one display updated in place until the last is done; shown again when done, as the
 * cell's own HTML result. The notebook imports the built package ('tessera', from dist/).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertBuilt, type ExecutedNotebook, displayHistory, executeNotebook, notebookToolsMissing, processRunning } from '../helpers/notebook.js';

const notebook = fileURLToPath(new URL('./fixtures/result-set.ipynb', import.meta.url));
const missing = await notebookToolsMissing();
if (missing !== false) process.stderr.write(`# ${missing}\n`);

const field = (markup: unknown, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(typeof markup === 'string' ? markup : '')?.[1];

void describe('a result set and a simulated cluster in the Deno kernel', { skip: missing }, () => {
  let run: ExecutedNotebook;

  before(async () => {
    assertBuilt();
    run = await executeNotebook(notebook, { timeoutMs: 120_000 });
  });

  test('the futures of a map: one display, updated in place, ending with every one done', () => {
    const ids = run.displays.filter((m) => m.cell === 2 && m.msg_type === 'display_data' && m.display_id?.startsWith('tessera-futures-') === true).map((m) => m.display_id!);
    assert.equal(ids.length, 1, JSON.stringify(run.displays.map((m) => [m.cell, m.msg_type, m.display_id])));
    const history = displayHistory(run, ids[0]!);
    assert.equal(history[0]?.msg_type, 'display_data');
    assert.match(String(history[0].data?.['text/plain']), /^6 futures\n {2}Status: 6 pending\n/);
    assert.ok(history.length >= 2, 'updated at least once');
    assert.ok(history.slice(1).every((m) => m.msg_type === 'update_display_data'));
    const last = history.at(-1)!;
    assert.equal(field(last.data?.['text/html'], 'status'), '5 finished, 1 erred');
    assert.match(String(last.data?.['text/plain']), /1 × RangeError: no threes/);
    // The cell's own result shows nothing (an empty bundle): the card is its own display.
    assert.ok(run.cells[2]!.outputs.every((o) => o.output_type !== 'execute_result' || o.data['text/html'] === undefined), JSON.stringify(run.cells[2]!.outputs));
  });

  test('shown when all are done, the futures are the cell’s HTML result', () => {
    const result = run.cells[3]!.outputs.find((o) => o.output_type === 'execute_result');
    assert.ok(result?.output_type === 'execute_result', JSON.stringify(run.cells[3]!.outputs));
    assert.match(String(result.data['text/html']), /^<div class="tessera-futures"/);
    assert.equal(field(result.data['text/html'], 'status'), '5 finished, 1 erred');
    assert.match(String(result.data['text/plain']), /^6 futures\n/);
  });

  test('a simulated cluster is a card with its virtual time', () => {
    const result = run.cells[4]!.outputs.find((o) => o.output_type === 'execute_result');
    assert.ok(result?.output_type === 'execute_result', JSON.stringify(run.cells[4]!.outputs));
    const markup = result.data['text/html'];
    assert.match(String(markup), /^<div class="tessera-cluster".*SimulatedCluster/);
    assert.match(field(markup, 'time') ?? '', /^\d+\.\d s$/);
    assert.equal(field(markup, 'adaptive'), 'minimum 0, maximum 3');
  });

  test('no error, and nothing left behind', () => {
    assert.deepEqual(run.errors, []);
    for (const p of run.processes) assert.equal(processRunning(p.pid), false, `pid ${p.pid} (${p.cmdline}) still runs`);
    assert.deepEqual(run.leftovers, []);
  });
});
