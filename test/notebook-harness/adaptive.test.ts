/**
 * The seed's demo as a notebook, for real: Deno's Jupyter kernel, driven by Jupyter's own
 * executor (nbclient), runs examples/adaptive.ipynb end to end — an adaptive LocalCluster
 * with no worker, a client, 200 sleeping tasks, workers that come and go. What a person in
 * JupyterLab would see is checked from the kernel's messages: the cluster's card (HTML,
 * with its workers count and dashboard link) refreshed in place as workers arrive and leave
 * and once more when it closes; the client's card; one progress display updated in place
 * up to 200/200; and no process left behind.
 *
 * The notebook imports the package itself ('tessera', from dist/): `npm test` builds it
 * first; run alone, build it with `npm run build`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  assertBuilt,
  type ExecutedNotebook,
  type KernelMessage,
  type NotebookCell,
  displayHistory,
  executeNotebook,
  notebookToolsMissing,
  processRunning,
  streamText,
} from '../helpers/notebook.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const notebook = join(root, 'examples/adaptive.ipynb');
const missing = await notebookToolsMissing();
if (missing !== false) process.stderr.write(`# ${missing}\n`);

const mime = (m: KernelMessage | undefined, type: string): string => {
  const value = m?.data?.[type];
  return typeof value === 'string' ? value : '';
};
const html = (m: KernelMessage | undefined): string => mime(m, 'text/html');
const text = (m: KernelMessage | undefined): string => mime(m, 'text/plain');
/** A card's value for one field, as the HTML shows it (`<td … data-field="workers">3</td>`). */
const field = (markup: string, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(markup)?.[1];
const workersIn = (m: KernelMessage): number => Number(/^\d+/.exec(field(html(m), 'workers') ?? '')?.[0] ?? NaN);

void describe('examples/adaptive.ipynb in the Deno kernel under nbclient', { skip: missing }, () => {
  let run: ExecutedNotebook;
  /** The index of the code cell whose source matches. */
  const cellOf = (pattern: RegExp): number => {
    const index = run.cells.findIndex((c: NotebookCell) => c.cell_type === 'code' && pattern.test(c.source));
    assert.ok(index >= 0, `a cell matching ${pattern}`);
    return index;
  };
  /** The display ids shown first (display_data) in a cell, of one kind. */
  const displaysOf = (cell: number, kind: string): string[] =>
    run.displays.filter((m) => m.cell === cell && m.msg_type === 'display_data' && m.display_id?.startsWith(`tessera-${kind}-`) === true).map((m) => m.display_id!);

  before(async () => {
    assertBuilt();
    run = await executeNotebook(notebook, { timeoutMs: 170_000 });
  });

  test('runs every cell in Deno’s TypeScript kernel, without an error', () => {
    assert.equal((run.kernel.languageInfo as { name?: unknown } | null)?.name, 'typescript');
    assert.deepEqual(run.errors, []);
    assert.ok(run.cells.filter((c) => c.cell_type === 'code').every((c) => c.execution_count !== null));
  });

  test('the cluster shows a card with zero workers and the dashboard link, refreshed in place as workers come and go', () => {
    const cell = cellOf(/^cluster$/m);
    const ids = displaysOf(cell, 'cluster');
    assert.equal(ids.length, 1, 'one card for the cluster');
    const history = displayHistory(run, ids[0] ?? '');
    const [first, ...updates] = history;
    assert.equal(first?.msg_type, 'display_data');
    assert.ok(updates.every((m) => m.msg_type === 'update_display_data'));
    // At first: no worker, the scheduler, the dashboard (a link), the adaptive bounds.
    assert.equal(workersIn(first), 0);
    assert.match(html(first), /<a href="http:\/\/127\.0\.0\.1:\d+\/"[^>]*>/);
    assert.match(field(html(first), 'address') ?? '', /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(field(html(first), 'adaptive'), 'minimum 0, maximum 4');
    assert.match(text(first), /Workers: 0/);
    // Workers came (up to the maximum) and went (back to none), as the card showed it.
    const counts = history.map(workersIn);
    const peak = Math.max(...counts);
    assert.ok(peak >= 1 && peak <= 4, `workers peaked at ${peak}: ${counts.join(' ')}`);
    const atPeak = counts.indexOf(peak);
    const runningAfterPeak = history.slice(atPeak).filter((m) => /^LocalCluster\n/.test(text(m)));
    assert.ok(runningAfterPeak.some((m) => workersIn(m) === 0), `workers left while the cluster ran: ${counts.join(' ')}`);
    // And once more when the cluster closed: its last state.
    // The last redraw races the kernel's end: it shows the cluster closing or closed.
    assert.match(text(history.at(-1)), /^LocalCluster \((closing|closed)\)/);
    // The updates are bounded, never a flood: about one a second, plus one for each worker
    // that came or left (four of each at most), plus the last.
    const span = (history.at(-1)!.t - first.t) / 1000;
    assert.ok(updates.length <= Math.ceil(span) + 2 * 4 + 1, `${updates.length} updates in ${span.toFixed(1)} s`);
    // The cell's own result carries nothing more (the card is the display above).
    const outputs = run.cells[cell]!.outputs;
    assert.equal(outputs.filter((o) => o.output_type === 'display_data').length, 1);
    for (const o of outputs) if (o.output_type === 'execute_result') assert.deepEqual(o.data, {});
  });

  test('the client shows a card with the cluster’s workers count and dashboard link', () => {
    const cell = cellOf(/^client$/m);
    const result = run.cells[cell]!.outputs.find((o) => o.output_type === 'execute_result');
    assert.ok(result?.output_type === 'execute_result');
    const markup = String(result.data['text/html']);
    assert.match(markup, /class="tessera-client"/);
    assert.equal(field(markup, 'connection'), 'through a LocalCluster');
    assert.equal(field(markup, 'workers'), '0');
    assert.match(markup, /<a href="http:\/\/127\.0\.0\.1:\d+\/"/);
    assert.match(String(result.data['text/plain']), /^Client client-/);
  });

  test('progress is one display updated in place, ending at 200/200', () => {
    const cell = cellOf(/client\.progress\(/);
    const ids = displaysOf(cell, 'progress');
    assert.equal(ids.length, 1, 'one progress display');
    const history = displayHistory(run, ids[0] ?? '');
    const [first, ...updates] = history;
    assert.equal(first?.msg_type, 'display_data');
    assert.ok(updates.length >= 2, `updated in place (${updates.length} updates)`);
    assert.ok(updates.every((m) => m.msg_type === 'update_display_data' && m.cell === cell));
    const done = history.map((m) => Number(/^(\d+)\/200/.exec(text(m))?.[1]));
    assert.deepEqual(done, [...done].sort((a, b) => a - b), `counts only grow: ${done.join(' ')}`);
    assert.equal(done[0], 0);
    const last = history.at(-1);
    assert.match(text(last), /^200\/200 \| done in \d+\.\ds$/);
    assert.match(html(last), /data-done="200" data-total="200" data-erred="0" data-final="true"/);
    // What the saved notebook holds: that one output, in its final state.
    const outputs = run.cells[cell]!.outputs;
    assert.equal(outputs.length, 1, 'updates add no outputs');
    assert.equal(outputs[0]?.output_type, 'display_data');
    assert.match(String(outputs[0].data['text/plain']), /^200\/200/);
  });

  test('the results arrive, and the adaptive loop scaled up and back down', () => {
    assert.match(streamText(run.cells[cellOf(/client\.gather\(/)]!, 'stdout'), /^200 results, sum \d+\n$/);
    const decisions = streamText(run.cells[cellOf(/history\(\)\.decisions/)]!, 'stdout');
    assert.match(decisions, /^scale-up to [1-4]: /m);
    assert.match(decisions, /^scale-down to 0: /m);
  });

  test('worker processes ran under the kernel’s runtime, and nothing is left behind', () => {
    const workers = run.processes.filter((p) => / worker tcp:\/\/127\.0\.0\.1:\d+ /.test(p.cmdline));
    assert.ok(workers.length >= 1, `worker processes seen: ${run.processes.map((p) => p.cmdline).join('\n')}`);
    assert.ok(workers.every((p) => /\bdeno run\b/.test(p.cmdline)), 'workers run under Deno');
    for (const p of run.processes) assert.equal(processRunning(p.pid), false, `pid ${p.pid} (${p.cmdline}) still runs`);
    assert.deepEqual(run.leftovers, []);
  });
});
