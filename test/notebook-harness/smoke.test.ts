/**
 * The notebook harness for real: Deno's Jupyter kernel, executed by nbclient, runs
 * examples/notebook-smoke.ipynb. Printing, a rich MIME bundle from the
 * Symbol.for('Jupyter.display') hook, and one display updated in place must come back as a
 * person in JupyterLab would see them, and the message sequence must prove the update was
 * in place (one display_data, then update_display_data with the same display id).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ExecutedNotebook, displayHistory, executeNotebook, notebookToolsMissing, processRunning, streamText } from '../helpers/notebook.js';

const notebook = fileURLToPath(new URL('../../examples/notebook-smoke.ipynb', import.meta.url));
const missing = await notebookToolsMissing();
if (missing !== false) process.stderr.write(`# ${missing}\n`);

void describe('examples/notebook-smoke.ipynb in the Deno kernel under nbclient', { skip: missing }, () => {
  let run: ExecutedNotebook;

  before(async () => {
    run = await executeNotebook(notebook, { timeoutMs: 120_000 });
  });

  test('runs in Deno’s TypeScript kernel', () => {
    assert.equal((run.kernel.languageInfo as { name?: unknown } | null)?.name, 'typescript');
    assert.match(run.processes[0]?.cmdline ?? '', /deno jupyter --kernel/);
  });

  test('a printing cell gives its stdout and stderr', () => {
    const cell = run.cells[1]!;
    assert.equal(streamText(cell, 'stdout'), 'hello from the kernel\n');
    assert.equal(streamText(cell, 'stderr'), 'and from stderr\n');
  });

  test('the last expression is shown through Symbol.for(Jupyter.display), HTML with a text fallback', () => {
    const outputs = run.cells[2]!.outputs;
    assert.equal(outputs.length, 1);
    const [result] = outputs;
    assert.equal(result?.output_type, 'execute_result');
    assert.deepEqual(result.data, { 'text/plain': 'Card(workers=2)', 'text/html': '<div class="card"><b>workers</b> 2</div>' });
  });

  test('a display updated in place is one output, showing its last state', () => {
    const outputs = run.cells[3]!.outputs;
    assert.equal(outputs.length, 1, 'updates must not add outputs');
    const [shown] = outputs;
    assert.equal(shown?.output_type, 'display_data');
    assert.equal(shown.data['text/plain'], 'progress 3/3');
    assert.match(String(shown.data['text/html']), /<progress value="3" max="3">/);
  });

  test('the kernel sent one display_data, then update_display_data for the same display id', () => {
    const history = displayHistory(run, 'smoke-progress');
    assert.deepEqual(
      history.map((m) => [m.msg_type, m.cell, m.data?.['text/plain']]),
      [
        ['display_data', 3, 'progress 0/3'],
        ['update_display_data', 3, 'progress 1/3'],
        ['update_display_data', 3, 'progress 2/3'],
        ['update_display_data', 3, 'progress 3/3'],
      ],
    );
    // In arrival order, and nothing else displayed in that cell.
    assert.deepEqual(history.map((m) => m.t), [...history.map((m) => m.t)].sort((a, b) => a - b));
    assert.equal(run.displays.filter((m) => m.cell === 3).length, history.length);
  });

  test('the kernel and everything it started are gone', () => {
    assert.ok(run.kernel.pid !== null);
    assert.ok(run.processes.length >= 1);
    for (const p of run.processes) assert.equal(processRunning(p.pid), false, `pid ${p.pid} (${p.cmdline}) still runs`);
    assert.deepEqual(run.leftovers, []);
  });
});
