/**
 * Real notebooks for tests: Deno's Jupyter kernel, driven by Jupyter's own executor
 * (nbclient) through scripts/notebook/execute.py. The tools are installed once, under
 * ~/.cache/tessera/notebook/, by scripts/notebook/ensure.sh.
 *
 * ```ts
 * const run = await executeNotebook('examples/notebook-smoke.ipynb');
 * run.cells[3]!.outputs;                  // what nbclient saved: the display's final state
 * displayHistory(run, 'smoke-progress');  // every bundle that display showed, in order
 * ```
 *
 * The saved notebook cannot prove that a display was updated in place (nbclient folds each
 * update_display_data into the output it updates, and display ids are transient), so the
 * result also carries every IOPub message the kernel sent, in order, with its display id.
 *
 * No process is left behind: the kernel is shut down by nbclient; then every process seen in
 * the kernel's tree, and every process that inherited this run's marker variable, must be
 * gone. Any that is not is killed and the run fails, naming it.
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ENSURE = join(root, 'scripts/notebook/ensure.sh');
const EXECUTE = join(root, 'scripts/notebook/execute.py');
/** The variable every process of a run inherits, so that strays can be found by it. */
const MARKER = 'TESSERA_NOTEBOOK_RUN';

/** Where ensure.sh installed the kernel and the executor. */
export interface NotebookTools {
  /** The virtualenv's python, with nbclient. */
  readonly python: string;
  readonly deno: string;
  /** The kernelspec's name (in `jupyterPath`, never the user's own Jupyter dirs). */
  readonly kernel: string;
  readonly jupyterPath: string;
  readonly denoDir: string;
}

let installing: Promise<NotebookTools> | undefined;

/** Installs the tools when missing (once per process; cheap when they are there). */
export function notebookTools(): Promise<NotebookTools> {
  installing ??= new Promise<NotebookTools>((resolvePromise, reject) => {
    execFile('bash', [ENSURE], { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        const why = stderr.trim().split('\n').pop()?.replace(/^notebook tools: /, '') ?? error.message;
        reject(new Error(`scripts/notebook/ensure.sh failed: ${why}\n${tail(stderr, 4000)}`));
        return;
      }
      const vars = new Map<string, string>();
      for (const line of stdout.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
      }
      const need = (name: string): string => {
        const value = vars.get(name);
        if (value === undefined) throw new Error(`scripts/notebook/ensure.sh did not print ${name}`);
        return value;
      };
      try {
        resolvePromise({
          python: need('TESSERA_NOTEBOOK_PYTHON'),
          deno: need('TESSERA_NOTEBOOK_DENO'),
          kernel: need('TESSERA_NOTEBOOK_KERNEL'),
          jupyterPath: need('JUPYTER_PATH'),
          denoDir: need('DENO_DIR'),
        });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
  return installing;
}

/**
 * Why notebook tests skip, or false when they can run; installs the tools first. Under
 * CI=true it is always false: there a missing kernel must fail the tests (with ensure.sh's
 * own error, from executeNotebook), never skip them.
 */
export async function notebookToolsMissing(): Promise<string | false> {
  const ci = process.env['CI'] === 'true';
  if (process.platform !== 'linux') {
    return ci ? false : `notebook tests need Linux (they watch processes through /proc): skipped on ${process.platform}`;
  }
  try {
    await notebookTools();
    return false;
  } catch (error) {
    const first = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
    return ci ? false : `the notebook kernel could not be installed (${first}): notebook tests skipped`;
  }
}

/** A MIME bundle: MIME type to content (strings for text types, JSON for +json types). */
export type MimeBundle = Readonly<Record<string, unknown>>;

export type CellOutput =
  | { readonly output_type: 'stream'; readonly name: 'stdout' | 'stderr'; readonly text: string }
  | { readonly output_type: 'display_data'; readonly data: MimeBundle; readonly metadata: Readonly<Record<string, unknown>> }
  | {
      readonly output_type: 'execute_result';
      readonly data: MimeBundle;
      readonly metadata: Readonly<Record<string, unknown>>;
      readonly execution_count: number | null;
    }
  | { readonly output_type: 'error'; readonly ename: string; readonly evalue: string; readonly traceback: readonly string[] };

export interface NotebookCell {
  readonly cell_type: 'code' | 'markdown' | 'raw';
  readonly source: string;
  /** Code cells only: what nbclient saved, updates already folded in. */
  readonly outputs: readonly CellOutput[];
  readonly execution_count: number | null;
}

/** One IOPub message as the kernel sent it, in arrival order. */
export interface KernelMessage {
  /** ms since the executor started. */
  readonly t: number;
  /** The cell whose execution request it answers (null: none, e.g. kernel_info's status). */
  readonly cell: number | null;
  readonly msg_type: string;
  /** From `transient`: the display it creates or updates (never saved in the notebook). */
  readonly display_id: string | null;
  /** Sent after its cell was reported idle (nbclient alone would have dropped it). */
  readonly late: boolean;
  readonly data?: MimeBundle;
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly name?: string;
  readonly text?: string;
  readonly execution_state?: string;
  readonly execution_count?: number | null;
  readonly ename?: string;
  readonly evalue?: string;
  readonly traceback?: readonly string[];
}

export interface SeenProcess {
  readonly pid: number;
  /** Start time in clock ticks since boot, from /proc: tells a reused pid apart. */
  readonly starttime: number;
  readonly cmdline: string;
}

export interface CellError {
  readonly cell: number | null;
  readonly ename: string;
  readonly evalue: string;
  readonly traceback: string | readonly string[];
}

export interface ExecutedNotebook {
  /** The executed notebook as nbclient saved it. */
  readonly notebook: { readonly cells: readonly NotebookCell[]; readonly metadata: Readonly<Record<string, unknown>> };
  readonly cells: readonly NotebookCell[];
  /** Every IOPub message, status messages included. */
  readonly messages: readonly KernelMessage[];
  /** The display messages alone (display_data, update_display_data, execute_result), in order. */
  readonly displays: readonly KernelMessage[];
  readonly kernel: { readonly pid: number | null; readonly languageInfo: unknown };
  /** Every process seen in the kernel's process tree (the kernel first). */
  readonly processes: readonly SeenProcess[];
  /** Processes that outlived the kernel and were killed (only with `allowLeftovers`). */
  readonly leftovers: readonly SeenProcess[];
  /** Every error output, in cell order (with `allowErrors`, cells run on past them). */
  readonly errors: readonly CellError[];
  /**
   * What stopped the run early, only seen with `allowErrors` (otherwise it throws): a timeout,
   * a dead kernel, or the executor's own failure. null when every cell ran.
   */
  readonly error: CellError | null;
  readonly durationMs: number;
}

export interface ExecuteOptions {
  /** The kernel's working directory. Default: the notebook's directory. */
  readonly cwd?: string;
  /** The whole run, kernel start to shutdown. Default 180 s. */
  readonly timeoutMs?: number;
  /** One cell. Default: `timeoutMs`. */
  readonly cellTimeoutMs?: number;
  /** Added to the kernel's environment (on top of this process's, and NO_COLOR=1). */
  readonly env?: Readonly<Record<string, string>>;
  /** Run every cell even after an error, and report the first error instead of throwing. */
  readonly allowErrors?: boolean;
  /** After the last cell, read IOPub until it has been quiet this long. Default 500 ms. */
  readonly settleMs?: number;
  /** Report processes left behind (after killing them) instead of throwing. */
  readonly allowLeftovers?: boolean;
  /** How long the kernel's processes get to leave after its shutdown. Default 5 s. */
  readonly exitGraceMs?: number;
  /** A kernelspec name other than ensure.sh's. */
  readonly kernel?: string;
}

interface DriverResult {
  readonly notebook: { readonly cells: readonly RawCell[]; readonly metadata: Record<string, unknown> };
  readonly messages: readonly KernelMessage[];
  readonly kernel: { readonly pid: number | null; readonly language_info: unknown };
  readonly processes: readonly SeenProcess[];
  readonly leftover: readonly SeenProcess[];
  readonly error: CellError | null;
}

interface RawCell {
  readonly cell_type: NotebookCell['cell_type'];
  readonly source: string | readonly string[];
  readonly outputs?: readonly Record<string, unknown>[];
  readonly execution_count?: number | null;
}

/**
 * Executes a notebook with nbclient and the Deno kernel, then makes sure nothing it started
 * is still running. Throws on a cell error (unless `allowErrors`), on a timeout, and when
 * processes were left behind (unless `allowLeftovers`).
 */
export async function executeNotebook(path: string, options: ExecuteOptions = {}): Promise<ExecutedNotebook> {
  const tools = await notebookTools();
  const notebook = resolve(path);
  if (!existsSync(notebook)) throw new Error(`no notebook at ${notebook}`);
  const timeoutMs = options.timeoutMs ?? 180_000;
  const cellTimeoutMs = options.cellTimeoutMs ?? timeoutMs;
  const marker = randomBytes(8).toString('hex');
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-notebook-'));
  const out = join(scratch, 'result.json');
  const started = performance.now();
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NO_COLOR: '1',
      ...options.env,
      // Jupyter's dirs are all private: the kernelspec's, and fresh config and runtime dirs,
      // so nothing of the user's Jupyter setup is read or written.
      JUPYTER_PATH: tools.jupyterPath,
      JUPYTER_DATA_DIR: tools.jupyterPath,
      JUPYTER_CONFIG_DIR: join(scratch, 'config'),
      JUPYTER_RUNTIME_DIR: join(scratch, 'runtime'),
      JUPYTER_PLATFORM_DIRS: '1',
      DENO_DIR: options.env?.['DENO_DIR'] ?? tools.denoDir,
      DENO_NO_UPDATE_CHECK: '1',
      [MARKER]: marker,
    };
    const args = [
      EXECUTE, notebook, '--out', out,
      '--cwd', resolve(options.cwd ?? dirname(notebook)),
      '--kernel', options.kernel ?? tools.kernel,
      '--cell-timeout', String(cellTimeoutMs / 1000),
      '--drain-ms', String(options.settleMs ?? 500),
      '--exit-grace', String((options.exitGraceMs ?? 5000) / 1000),
    ];
    if (options.allowErrors === true) args.push('--allow-errors');
    const driver = await run(tools.python, args, env, timeoutMs);

    const strays = await strayProcesses(marker, existsSync(out) ? readResult(out).processes : []);
    if (!existsSync(out)) {
      throw new Error(
        `the notebook executor ${driver.timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${driver.code}`} ` +
          `without a result for ${path}:\n${tail(driver.stderr, 4000)}${describeStrays(strays)}`,
      );
    }
    const result = readResult(out);
    if (strays.length > 0 && options.allowLeftovers !== true) {
      throw new Error(`executing ${path} left processes behind (killed now):${describeStrays(strays)}`);
    }
    if (result.error !== null && options.allowErrors !== true) {
      const { cell, ename, evalue, traceback } = result.error;
      const trace = Array.isArray(traceback) ? traceback.join('\n') : String(traceback);
      throw new Error(`cell ${cell ?? '?'} of ${path} failed: ${ename}: ${stripAnsi(evalue)}\n${stripAnsi(trace)}\n${tail(driver.stderr, 2000)}`);
    }
    const cells = result.notebook.cells.map(normaliseCell);
    const errors = cells.flatMap((cell, index) =>
      cell.outputs.flatMap((o) => (o.output_type === 'error' ? [{ cell: index, ename: o.ename, evalue: o.evalue, traceback: o.traceback }] : [])),
    );
    return {
      notebook: { cells, metadata: result.notebook.metadata },
      cells,
      messages: result.messages,
      displays: result.messages.filter((m) => DISPLAY_TYPES.has(m.msg_type)),
      kernel: { pid: result.kernel.pid, languageInfo: result.kernel.language_info },
      processes: result.processes,
      leftovers: strays,
      errors,
      error: result.error,
      durationMs: performance.now() - started,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const DISPLAY_TYPES = new Set(['display_data', 'update_display_data', 'execute_result']);

/** Every bundle one display showed, in order: its display_data, then each update. */
export function displayHistory(run: ExecutedNotebook, displayId: string): KernelMessage[] {
  return run.displays.filter((m) => m.display_id === displayId);
}

/** The text a cell wrote to one stream. */
export function streamText(cell: NotebookCell, name: 'stdout' | 'stderr'): string {
  return cell.outputs.map((o) => (o.output_type === 'stream' && o.name === name ? o.text : '')).join('');
}

export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function normaliseCell(cell: RawCell): NotebookCell {
  const join = (v: unknown): unknown => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v.join('') : v);
  const outputs = (cell.outputs ?? []).map((o) => {
    const copy: Record<string, unknown> = { ...o };
    if ('text' in copy) copy['text'] = join(copy['text']);
    if (typeof copy['data'] === 'object' && copy['data'] !== null) {
      copy['data'] = Object.fromEntries(Object.entries(copy['data']).map(([k, v]) => [k, join(v)]));
    }
    return copy as unknown as CellOutput;
  });
  return {
    cell_type: cell.cell_type,
    source: typeof cell.source === 'string' ? cell.source : cell.source.join(''),
    outputs,
    execution_count: cell.execution_count ?? null,
  };
}

function readResult(file: string): DriverResult {
  return JSON.parse(readFileSync(file, 'utf8')) as DriverResult;
}

interface Finished {
  readonly code: number | null;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs the executor in its own process group, so that a timeout can stop all of it. */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    let timedOut = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = tail(stderr + chunk, 64 * 1024);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stderr, timedOut });
    });
  });
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Processes of this run still alive: those the executor saw in the kernel's tree (same pid
 * and start time), and any that carries the run's marker in its environment (a child that
 * escaped the tree, or one of a kernel the executor never got to watch). The executor has
 * already given them their grace; they get a last half second, then are killed.
 */
async function strayProcesses(marker: string, seen: readonly SeenProcess[]): Promise<SeenProcess[]> {
  if (process.platform !== 'linux') return [];
  const find = (): SeenProcess[] => {
    const found = new Map<number, SeenProcess>();
    for (const p of seen) {
      if (startTime(p.pid) === p.starttime) found.set(p.pid, p);
    }
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (found.has(pid) || pid === process.pid) continue;
      let environ: string;
      try {
        environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      } catch {
        continue;
      }
      if (!environ.split('\0').includes(`${MARKER}=${marker}`)) continue;
      const starttime = startTime(pid);
      if (starttime !== undefined) found.set(pid, { pid, starttime, cmdline: commandLine(pid) });
    }
    return [...found.values()];
  };
  let strays = find();
  for (let waited = 0; strays.length > 0 && waited < 500; waited += 100) {
    await sleep(100);
    strays = find();
  }
  for (const p of strays) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone in the meantime.
    }
  }
  for (let waited = 0; strays.some((p) => startTime(p.pid) === p.starttime) && waited < 5000; waited += 50) {
    await sleep(50);
  }
  return strays;
}

/** Whether a process runs: it exists and is not a zombie waiting for its parent to reap it. */
export function processRunning(pid: number): boolean {
  return startTime(pid) !== undefined;
}

/** A live (not zombie) process's start time, from /proc/PID/stat; undefined when gone. */
function startTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return Number(fields[19]);
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function describeStrays(strays: readonly SeenProcess[]): string {
  return strays.map((p) => `\n  pid ${p.pid}: ${p.cmdline}`).join('');
}

function tail(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}

/** The newest modification time of the .ts files under a directory. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

/** Notebooks import the built package: refuse to run them on a dist/ older than src/. */
export function assertBuilt(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  let built: number;
  try {
    built = statSync(join(root, 'dist/index.js')).mtimeMs;
  } catch {
    throw new Error('the notebook imports the built package, and dist/ is missing: run `npm run build`');
  }
  if (newest(join(root, 'src')) > built) throw new Error('dist/ is older than src/: run `npm run build` so that the notebook runs this code');
}
