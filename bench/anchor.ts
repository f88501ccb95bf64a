// Runs the Python anchor scripts (the real Dask and Ray, bench/anchors/*.py) beside
// Tessera's benchmarks and collects the JSON lines they print. See /work/shared/BENCHMARKS.md.
//
// Three anchors, each with its own interpreter:
//   dask         Dask and distributed 2026.8 from PyPI, in the cached environment of venv.ts
//   ray          Ray 2.60 from PyPI, same environment
//   dask-debian  Debian's python3-dask and python3-distributed (2022.12), /usr/bin/python3,
//                a second Dask row while those packages are installed
//
// Never throws: a missing interpreter or package, a script that fails, or a timeout all
// come back as { available: false, reason }, which the benchmarks print as a skipped line.

import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureVenv } from "./venv.js";

/** The Debian interpreter that has python3-dask and python3-distributed. */
export const PYTHON = "/usr/bin/python3";

export type AnchorId = "dask" | "ray" | "dask-debian";
export const ANCHOR_IDS: readonly AnchorId[] = ["dask", "ray", "dask-debian"];

/** The anchors named by a comma-separated `--anchors` value (all by default, none for ""). */
export function selectAnchors(value: string | undefined, among: readonly AnchorId[] = ANCHOR_IDS): AnchorId[] {
  if (value === undefined) return [...among];
  const chosen = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const id of chosen) {
    if (!(ANCHOR_IDS as readonly string[]).includes(id)) throw new Error(`--anchors takes ${ANCHOR_IDS.join(", ")}; got '${id}'`);
  }
  return among.filter((id) => chosen.includes(id));
}

/** "Dask 2026.8.0", "Ray 2.60.0", "Dask 2022.12.1 (Debian)": from a script's JSON line. */
export function anchorLabel(id: AnchorId, line: AnchorLine): string {
  const version = (key: string): string => {
    const v = line[key];
    return typeof v === "string" ? v : "?";
  };
  if (id === "ray") return `Ray ${version("rayVersion")}`;
  return `Dask ${version("daskVersion")}${id === "dask-debian" ? " (Debian)" : ""}`;
}

const ANCHORS_DIR = fileURLToPath(new URL("./anchors/", import.meta.url));
const DEFAULT_TIMEOUT_MS = 30 * 60_000;
const CHECK_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 5_000;
const STDERR_TAIL = 2_000;

export type AnchorLine = Record<string, unknown>;

export type AnchorResult =
  | { available: true; lines: AnchorLine[] }
  | { available: false; reason: string };

export interface AnchorOptions {
  /** Kill the script (and its worker processes) after this long. Default 30 minutes. */
  timeoutMs?: number;
}

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  spawnError?: Error;
}

/** The environment for the Debian interpreter, without a pyenv/venv leaking in. */
function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  delete env["PYTHONPATH"];
  delete env["PYTHONHOME"];
  delete env["VIRTUAL_ENV"];
  return env;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // The child leads its own process group (detached), which also holds the Dask
    // worker processes it spawned; signal the whole group.
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Process groups of anchor scripts still running: ended with this process, even on a signal. */
const running = new Set<number>();
let signalsHandled = false;

function endGroupsOnSignal(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      // The scripts lead their own groups (detached), which a terminal's Ctrl-C never reaches.
      for (const pid of running) killGroup(pid, "SIGKILL");
      process.kill(process.pid, signal);
    });
  }
}

function run(python: string, args: string[], timeoutMs: number): Promise<RunOutcome> {
  endGroupsOnSignal();
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const child = spawn(python, args, {
      env: pythonEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    const onParentExit = (): void => {
      if (pid !== undefined) killGroup(pid, "SIGKILL");
    };
    process.once("exit", onParentExit);

    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.length > 4 * STDERR_TAIL) stderr = stderr.slice(-STDERR_TAIL);
    });

    const timer = setTimeout(() => {
      timedOut = true;
      if (pid === undefined) return;
      // SIGINT first so that Python's context managers close the cluster, then SIGKILL.
      killGroup(pid, "SIGINT");
      graceTimer = setTimeout(() => { killGroup(pid, "SIGKILL"); }, KILL_GRACE_MS);
      graceTimer.unref();
    }, timeoutMs);

    const finish = (outcome: Omit<RunOutcome, "stdout" | "stderr" | "timedOut">): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      process.removeListener("exit", onParentExit);
      if (pid !== undefined) running.delete(pid);
      // After a crash or a timeout, reap stragglers (Dask worker processes orphaned in
      // the child's process group). A clean exit has closed its cluster already.
      if (pid !== undefined && (timedOut || outcome.code !== 0)) killGroup(pid, "SIGKILL");
      resolve({ ...outcome, stdout, stderr, timedOut });
    };

    child.once("error", (err) => { finish({ code: null, signal: null, spawnError: err }); });
    child.once("close", (code, signal) => { finish({ code, signal }); });
  });
}

function tail(s: string): string {
  const t = s.trim();
  return t.length > STDERR_TAIL ? `…${t.slice(-STDERR_TAIL)}` : t;
}

function isRecord(v: unknown): v is AnchorLine {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON objects printed one per line; other lines (warnings, blank) are skipped. */
export function parseJsonLines(text: string): AnchorLine[] {
  const lines: AnchorLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line.startsWith("{")) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isRecord(v)) lines.push(v);
    } catch {
      // Not JSON after all.
    }
  }
  return lines;
}

const IMPORTS: Record<AnchorId, string> = { dask: "import dask, distributed", ray: "import ray", "dask-debian": "import dask, distributed" };

const checked = new Map<AnchorId, Promise<{ python: string } | { reason: string }>>();

/** The interpreter that runs an anchor, or why it cannot run. Cached for the process. */
export function anchorPython(id: AnchorId): Promise<{ python: string } | { reason: string }> {
  let found = checked.get(id);
  if (found === undefined) {
    found = (async (): Promise<{ python: string } | { reason: string }> => {
      let python = PYTHON;
      let hint = "apt-get install python3-dask python3-distributed";
      if (id === "dask-debian") {
        try {
          await access(PYTHON, constants.X_OK);
        } catch {
          return { reason: `${PYTHON} not found (${hint})` };
        }
      } else {
        const venv = await ensureVenv((line) => {
          console.error(JSON.stringify({ bench: "venv", ...line }));
        });
        if (!venv.available) return { reason: venv.reason };
        python = venv.python;
        hint = "the cached environment lacks it: delete it to recreate";
      }
      const r = await run(python, ["-c", IMPORTS[id]], CHECK_TIMEOUT_MS);
      if (r.spawnError !== undefined) return { reason: `cannot run ${python}: ${r.spawnError.message}` };
      if (r.timedOut) return { reason: `${python} -c "${IMPORTS[id]}" timed out` };
      if (r.code !== 0) return { reason: `${IMPORTS[id]} fails under ${python} (${hint}): ${tail(r.stderr)}` };
      return { python };
    })();
    checked.set(id, found);
  }
  return found;
}

/**
 * Runs `<anchor's python> bench/anchors/<script> ...args` and returns the JSON lines it
 * printed on stdout.
 */
export async function runAnchor(
  id: AnchorId,
  script: string,
  args: string[],
  opts?: AnchorOptions,
): Promise<AnchorResult> {
  if (path.basename(script) !== script || !script.endsWith(".py")) {
    return { available: false, reason: `bad anchor script name: ${script}` };
  }
  const scriptPath = path.join(ANCHORS_DIR, script);
  try {
    await access(scriptPath, constants.R_OK);
  } catch {
    return { available: false, reason: `anchor script not found: ${scriptPath}` };
  }
  const found = await anchorPython(id);
  if ("reason" in found) return { available: false, reason: found.reason };
  const { python } = found;

  const timeoutMs = opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r = await run(python, [scriptPath, ...args], timeoutMs);
  if (r.spawnError !== undefined) {
    return { available: false, reason: `cannot run ${python}: ${r.spawnError.message}` };
  }
  if (r.timedOut) {
    return { available: false, reason: `${script} timed out after ${timeoutMs} ms (killed)` };
  }
  if (r.code !== 0) {
    const how = r.code === null ? `signal ${r.signal ?? "?"}` : `code ${r.code}`;
    return { available: false, reason: `${script} exited with ${how}: ${tail(r.stderr)}` };
  }
  const lines = parseJsonLines(r.stdout);
  if (lines.length === 0) {
    return { available: false, reason: `${script} printed no JSON lines: ${tail(r.stderr)}` };
  }
  return { available: true, lines };
}

/** Median of xs (mean of the middle two for an even count); NaN for an empty list. */
export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const hi = s[mid] ?? Number.NaN;
  if (s.length % 2 === 1) return hi;
  const lo = s[mid - 1] ?? Number.NaN;
  return (lo + hi) / 2;
}
