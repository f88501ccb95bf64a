/**
 * What the notebook harness must catch, with the real kernel: a process a notebook leaves
 * behind (found, killed, and reported), a failing cell, and an output the kernel sends after
 * reporting its cell idle (nbclient alone drops it; a person in JupyterLab sees it).
 * The notebook is test/notebook-harness/fixtures/faults.ipynb.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { executeNotebook, notebookToolsMissing, processRunning, streamText } from '../helpers/notebook.js';

const notebook = fileURLToPath(new URL('./fixtures/faults.ipynb', import.meta.url));
const missing = await notebookToolsMissing();
if (missing !== false) process.stderr.write(`# ${missing}\n`);

const STRAY = { HARNESS_SPAWN_STRAY: '1' };

void describe('the notebook harness catches what it must', { skip: missing }, () => {
  test('a process left behind, a cell error and a late output, all reported when allowed', async () => {
    const run = await executeNotebook(notebook, { env: STRAY, allowErrors: true, allowLeftovers: true, exitGraceMs: 1000, timeoutMs: 120_000 });

    const strayPid = Number(/stray (\d+)/.exec(streamText(run.cells[1]!, 'stdout'))?.[1]);
    assert.ok(strayPid > 0);
    const left = run.leftovers.find((p) => p.pid === strayPid);
    assert.ok(left !== undefined, `the stray ${strayPid} is reported: ${JSON.stringify(run.leftovers)}`);
    assert.match(left.cmdline, /sleep 600/);
    assert.equal(processRunning(strayPid), false, 'and killed');

    assert.equal(run.error, null, 'every cell ran');
    assert.deepEqual(
      run.errors.map((e) => [e.cell, e.ename, e.evalue]),
      [[2, 'Error', 'boom from a cell']],
    );

    // The last cell still ran, and its display from a timer, sent after the cell was idle,
    // is kept in the cell and marked late.
    const last = run.cells[3]!;
    assert.equal(streamText(last, 'stdout'), 'after the error\n');
    assert.deepEqual(
      last.outputs.filter((o) => o.output_type === 'display_data').map((o) => o.data),
      [{ 'text/plain': 'a late display' }],
    );
    const sent = run.displays.find((m) => m.cell === 3);
    assert.equal(sent?.late, true, 'the display came after the cell was idle');
  });

  test('a process left behind fails the run, and is killed', async () => {
    await assert.rejects(
      executeNotebook(notebook, { env: STRAY, allowErrors: true, exitGraceMs: 1000, timeoutMs: 120_000 }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, /left processes behind \(killed now\)/);
        assert.match(error.message, /sleep 600/);
        const pid = Number(/pid (\d+): .*sleep 600/.exec(error.message)?.[1]);
        assert.equal(processRunning(pid), false);
        return true;
      },
    );
  });

  test('a failing cell fails the run, naming the cell and the error', async () => {
    await assert.rejects(executeNotebook(notebook, { timeoutMs: 120_000 }), /cell 2 of .*faults\.ipynb failed: Error: boom from a cell/);
  });
});
