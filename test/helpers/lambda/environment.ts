/**
 * One execution environment: an OS process running AWS's Node.js runtime interface client
 * with the function's handler, and the Runtime API it dials out to.
 *
 * The Runtime API (`/2018-06-01/runtime/…`) is served here, on 127.0.0.1, one listener per
 * environment: its paths carry no environment id, so a listener is what tells environments
 * apart. The function's process listens on nothing; it only connects to this API, as in
 * Lambda. An environment runs one invocation at a time: init (the client loading the
 * handler) up to its first `invocation/next`, then for each invocation the event is handed to
 * that long-poll, and the `response` or `error` the client posts completes it. Between
 * invocations the process group is frozen (SIGSTOP) as Lambda freezes its sandboxes; an
 * overrun, a crash or an init error destroys it (SIGKILL to the whole group).
 *
 * The Runtime API is this service's own, written against AWS's documentation, rather than
 * AWS's runtime interface emulator: the emulator serves one environment behind an invoke
 * endpoint that answers a handler's error like a result, so the service could not tell
 * function errors, timeouts and crashes apart (README.md says more).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SYNC_RESPONSE_LIMIT } from './limits.js';

export interface EnvironmentSpec {
  readonly functionName: string;
  readonly functionArn: string;
  readonly handler: string;
  readonly runtime: string;
  readonly memoryMB: number;
  readonly timeoutS: number;
  readonly taskRoot: string;
  readonly region: string;
  readonly variables: Readonly<Record<string, string>>;
  /** The execution role's credentials, as Lambda puts them in the environment. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken: string };
}

export interface EnvironmentOptions {
  /** The runtime interface client's entry point (`aws-lambda-ric HANDLER`). */
  readonly runtimeClient: string;
  /** Stop the process group between invocations. */
  readonly freeze: boolean;
  readonly initTimeoutMs: number;
  /** Every line the environment prints, and the platform's START/END/REPORT lines. */
  readonly log: (functionName: string, line: string) => void;
}

export interface Invocation {
  readonly requestId: string;
  readonly payload: Buffer;
  readonly traceId: string;
  readonly clientContext?: string | undefined;
  /** Keep the last 4 KB of the invocation's log for `X-Amz-Log-Result`. */
  readonly tail: boolean;
}

/** What an invocation came to: the function's response, or a function error document. */
export type Outcome =
  | { readonly ok: true; readonly body: Buffer; readonly log?: string | undefined }
  | { readonly ok: false; readonly errorType: string; readonly body: Buffer; readonly log?: string | undefined };

export type EnvironmentState = 'initializing' | 'idle' | 'busy' | 'dead';

interface Assignment {
  readonly invocation: Invocation;
  readonly resolve: (outcome: Outcome) => void;
  delivered: boolean;
  /** performance.now() at delivery, for the REPORT line's duration. */
  startedAt: number;
  logged: string;
}

const TAIL_BYTES = 4096;

const errorDocument = (errorType: string, errorMessage: string): Buffer => Buffer.from(JSON.stringify({ errorType, errorMessage }));

let liveGroups: Set<number> | undefined;

/** A test process that dies without closing the service must not leave environments behind. */
function trackGroup(pid: number): void {
  if (liveGroups === undefined) {
    const groups = new Set<number>();
    liveGroups = groups;
    process.once('exit', () => {
      for (const group of groups) killGroup(group, 'SIGKILL');
    });
  }
  liveGroups.add(pid);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export class ExecutionEnvironment {
  readonly id = randomBytes(16).toString('hex');
  readonly createdAt = performance.now();
  state: EnvironmentState = 'initializing';
  /** Set when the state becomes idle; the pool reaps environments idle for too long. */
  idleSince = 0;
  invocations = 0;
  initDurationMs: number | undefined;
  /** Called once, when the environment has died for any reason. */
  onDead: (env: ExecutionEnvironment) => void = () => undefined;
  /** Called whenever it becomes idle (ready for another invocation). */
  onIdle: (env: ExecutionEnvironment) => void = () => undefined;

  private readonly server: Server;
  private child: ChildProcess | undefined;
  private readonly tmp: string;
  private pendingNext: ServerResponse | undefined;
  private assignment: Assignment | undefined;
  private timer: NodeJS.Timeout | undefined;
  private memoryWatch: NodeJS.Timeout | undefined;
  private frozen = false;
  private deadReason = '';

  private constructor(
    readonly spec: EnvironmentSpec,
    private readonly opts: EnvironmentOptions,
  ) {
    this.tmp = mkdtempSync(join(tmpdir(), 'tessera-lambda-env-'));
    this.server = createServer((req, res) => this.route(req, res));
    this.server.keepAliveTimeout = 0;
  }

  /** Starts the Runtime API and the process; init runs until the client first asks for an event. */
  static async launch(spec: EnvironmentSpec, opts: EnvironmentOptions): Promise<ExecutionEnvironment> {
    const env = new ExecutionEnvironment(spec, opts);
    await new Promise<void>((resolve, reject) => {
      env.server.once('error', reject);
      env.server.listen(0, '127.0.0.1', () => resolve());
    });
    env.spawn();
    return env;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get runtimeApi(): string {
    const { port } = this.server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  private spawn(): void {
    const { spec } = this;
    const date = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
    const heapMB = Math.max(32, Math.floor(spec.memoryMB * 0.9));
    const env: Record<string, string> = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      TMPDIR: this.tmp,
      LAMBDA_TASK_ROOT: spec.taskRoot,
      LAMBDA_RUNTIME_DIR: dirname(dirname(this.opts.runtimeClient)),
      NODE_PATH: [join(spec.taskRoot, 'node_modules'), spec.taskRoot].join(':'),
      _HANDLER: spec.handler,
      AWS_EXECUTION_ENV: `AWS_Lambda_${spec.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: spec.functionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMB),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `${date}/[$LATEST]${this.id}`,
      AWS_LAMBDA_RUNTIME_API: this.runtimeApi,
      AWS_REGION: spec.region,
      AWS_DEFAULT_REGION: spec.region,
      AWS_ACCESS_KEY_ID: spec.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: spec.credentials.secretAccessKey,
      AWS_SESSION_TOKEN: spec.credentials.sessionToken,
      ...spec.variables,
    };
    // Lambda's Node bootstrap sizes the old generation from the configured memory.
    const args = ['--expose-gc', `--max-old-space-size=${heapMB}`, this.opts.runtimeClient, spec.handler];
    // Its own process group: the whole sandbox is frozen and destroyed, children included.
    const child = spawn(process.execPath, args, { cwd: spec.taskRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    if (child.pid !== undefined) trackGroup(child.pid);
    const onOutput = (chunk: Buffer): void => this.output(chunk.toString());
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.once('error', (err) => this.die(`Runtime failed to start: ${err.message}`, 'Runtime.Unknown'));
    child.once('exit', (code, signal) => {
      const how = signal === null ? `exit status ${code ?? 0}` : `signal: ${signal === 'SIGKILL' ? 'killed' : signal}`;
      this.die(`Runtime exited with error: ${how}`, 'Runtime.ExitError');
    });
    this.armTimer(this.opts.initTimeoutMs, () => this.die(`Runtime init timed out after ${this.opts.initTimeoutMs / 1000} seconds`, 'Runtime.Unknown'));
  }

  private output(text: string): void {
    for (const line of text.split('\n')) if (line !== '') this.opts.log(this.spec.functionName, line);
    if (this.assignment?.invocation.tail === true) this.assignment.logged = (this.assignment.logged + text).slice(-TAIL_BYTES);
  }

  /** Runs one invocation here. The pool calls this only on an initializing or idle environment. */
  invoke(invocation: Invocation): Promise<Outcome> {
    if (this.state === 'dead' || this.assignment !== undefined) throw new Error(`environment ${this.id} is ${this.state}`);
    return new Promise<Outcome>((resolve) => {
      this.assignment = { invocation, resolve, delivered: false, startedAt: 0, logged: '' };
      if (this.state === 'idle') this.state = 'busy';
      this.deliver();
    });
  }

  /** Hands the assigned event to the client's pending `next`, if both are there. */
  private deliver(): void {
    const a = this.assignment;
    const res = this.pendingNext;
    if (a === undefined || a.delivered || res === undefined || this.state === 'initializing') return;
    this.pendingNext = undefined;
    a.delivered = true;
    a.startedAt = performance.now();
    this.invocations++;
    const { timeoutS } = this.spec;
    const deadline = Date.now() + timeoutS * 1000;
    this.opts.log(this.spec.functionName, `START RequestId: ${a.invocation.requestId} Version: $LATEST`);
    this.armTimer(timeoutS * 1000, () => this.timedOut(a));
    this.watchMemory(a);
    this.thaw();
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': a.invocation.payload.length,
      'Lambda-Runtime-Aws-Request-Id': a.invocation.requestId,
      'Lambda-Runtime-Deadline-Ms': deadline,
      'Lambda-Runtime-Invoked-Function-Arn': this.spec.functionArn,
      'Lambda-Runtime-Trace-Id': a.invocation.traceId,
    };
    if (a.invocation.clientContext !== undefined) headers['Lambda-Runtime-Client-Context'] = a.invocation.clientContext;
    res.writeHead(200, headers);
    res.end(a.invocation.payload);
  }

  private timedOut(a: Assignment): void {
    const message = `RequestId: ${a.invocation.requestId} Error: Task timed out after ${this.spec.timeoutS.toFixed(2)} seconds`;
    this.complete(a, { ok: false, errorType: 'Sandbox.Timedout', body: errorDocument('Sandbox.Timedout', message) });
    this.destroy('timeout');
  }

  /** Samples the runtime's resident size; past MemorySize the sandbox is killed, as Lambda's cgroup would. */
  private watchMemory(a: Assignment): void {
    clearInterval(this.memoryWatch);
    this.memoryWatch = setInterval(() => {
      const rssMB = readStatusMB(this.pid, 'VmRSS');
      if (rssMB <= this.spec.memoryMB) return;
      const message = `RequestId: ${a.invocation.requestId} Error: Runtime exited with error: signal: killed`;
      this.complete(a, { ok: false, errorType: 'Runtime.OutOfMemory', body: errorDocument('Runtime.OutOfMemory', message) });
      this.destroy('out of memory');
    }, 100);
    this.memoryWatch.unref();
  }

  private complete(a: Assignment, outcome: Outcome): void {
    if (this.assignment !== a) return;
    this.assignment = undefined;
    this.disarmTimer();
    clearInterval(this.memoryWatch);
    this.memoryWatch = undefined;
    const id = a.invocation.requestId;
    if (a.delivered) {
      const ms = performance.now() - a.startedAt;
      const init = this.initDurationMs !== undefined && this.invocations === 1 ? `\tInit Duration: ${this.initDurationMs.toFixed(2)} ms` : '';
      const end = `END RequestId: ${id}\nREPORT RequestId: ${id}\tDuration: ${ms.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(ms))} ms\tMemory Size: ${this.spec.memoryMB} MB\tMax Memory Used: ${readStatusMB(this.pid, 'VmHWM')} MB${init}`;
      for (const line of end.split('\n')) this.opts.log(this.spec.functionName, line);
      if (a.invocation.tail) a.logged = (`START RequestId: ${id} Version: $LATEST\n` + a.logged + end + '\n').slice(-TAIL_BYTES);
    }
    if (this.state === 'busy') this.state = 'idle';
    a.resolve(a.invocation.tail ? { ...outcome, log: a.logged } : outcome);
  }

  // ---- the Runtime API -------------------------------------------------------------------

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method === 'GET' && path === '/2018-06-01/runtime/invocation/next') { this.next(req, res); return; }
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(path);
    if (req.method === 'POST' && m !== null) return void this.result(req, res, decodeURIComponent(m[1]!), m[2] as 'response' | 'error');
    if (req.method === 'POST' && path === '/2018-06-01/runtime/init/error') return void this.initError(req, res);
    req.resume();
    reply(res, 404, { errorMessage: 'Not found', errorType: 'InvalidRequest' });
  }

  private next(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (this.state === 'dead') return void res.destroy();
    if (this.state === 'initializing') {
      this.initDurationMs = performance.now() - this.createdAt;
      this.disarmTimer();
      this.state = this.assignment === undefined ? 'idle' : 'busy';
    }
    this.pendingNext = res;
    res.once('close', () => {
      if (this.pendingNext === res) this.pendingNext = undefined;
    });
    if (this.assignment !== undefined) { this.deliver(); return; }
    // Nothing to do: the sandbox is frozen until the next invocation, as in Lambda.
    if (this.state === 'idle') this.idleSince = Date.now();
    this.freeze();
    this.onIdle(this);
  }

  private async result(req: IncomingMessage, res: ServerResponse, requestId: string, kind: 'response' | 'error'): Promise<void> {
    const a = this.assignment;
    const current = a !== undefined && a.delivered && a.invocation.requestId === requestId;
    const { body, overflow } = await readLimited(req, SYNC_RESPONSE_LIMIT);
    if (!current) { reply(res, 400, { errorMessage: 'Invalid request ID', errorType: 'InvalidRequestID' }); return; }
    if (kind === 'response') {
      if (overflow) {
        const message = `Response payload size exceeded maximum allowed payload size (${SYNC_RESPONSE_LIMIT} bytes).`;
        reply(res, 413, { errorMessage: `Exceeded maximum allowed payload size (${SYNC_RESPONSE_LIMIT} bytes).`, errorType: 'RequestEntityTooLarge' });
        this.complete(a, { ok: false, errorType: 'Function.ResponseSizeTooLarge', body: errorDocument('Function.ResponseSizeTooLarge', message) }); return;
      }
      reply(res, 202, { status: 'OK' });
      this.complete(a, { ok: true, body }); return;
    }
    const header = req.headers['lambda-runtime-function-error-type'];
    const errorType = (typeof header === 'string' ? header : undefined) ?? errorTypeOf(body) ?? 'Unhandled';
    reply(res, 202, { status: 'OK' });
    this.complete(a, { ok: false, errorType, body: overflow ? errorDocument(errorType, 'error document too large') : body });
  }

  private async initError(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body } = await readLimited(req, SYNC_RESPONSE_LIMIT);
    reply(res, 202, { status: 'OK' });
    const header = req.headers['lambda-runtime-function-error-type'];
    const errorType = (typeof header === 'string' ? header : undefined) ?? errorTypeOf(body) ?? 'Runtime.Unknown';
    const a = this.assignment;
    if (a !== undefined) this.complete(a, { ok: false, errorType, body });
    this.destroy(`init error: ${errorType}`);
  }

  // ---- life and death --------------------------------------------------------------------

  private freeze(): void {
    if (!this.opts.freeze || this.frozen || this.pid === undefined || this.state === 'dead') return;
    killGroup(this.pid, 'SIGSTOP');
    this.frozen = true;
  }

  private thaw(): void {
    if (!this.frozen || this.pid === undefined) return;
    killGroup(this.pid, 'SIGCONT');
    this.frozen = false;
  }

  private armTimer(ms: number, fire: () => void): void {
    this.disarmTimer();
    this.timer = setTimeout(fire, ms);
  }

  private disarmTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The process ended, or must: whatever was running gets a function error naming why. */
  private die(message: string, errorType: string): void {
    const a = this.assignment;
    if (a !== undefined) {
      const text = a.delivered ? `RequestId: ${a.invocation.requestId} Error: ${message}` : `Error: ${message}`;
      this.complete(a, { ok: false, errorType, body: errorDocument(errorType, text) });
    }
    this.destroy(message);
  }

  /** Destroys the sandbox: SIGKILL to the process group, the Runtime API closed. Idempotent. */
  destroy(reason: string): void {
    if (this.state === 'dead') return;
    this.deadReason = reason;
    this.state = 'dead';
    this.disarmTimer();
    clearInterval(this.memoryWatch);
    const pid = this.pid;
    if (pid !== undefined) {
      killGroup(pid, 'SIGKILL');
      // SIGKILL ends a stopped process too; nothing else is needed to thaw it.
      liveGroups?.delete(pid);
    }
    this.pendingNext?.destroy();
    this.pendingNext = undefined;
    this.server.close();
    this.server.closeAllConnections();
    rmSync(this.tmp, { recursive: true, force: true });
    const a = this.assignment;
    if (a !== undefined) {
      const errorType = 'Runtime.ExitError';
      this.complete(a, { ok: false, errorType, body: errorDocument(errorType, `RequestId: ${a.invocation.requestId} Error: ${reason}`) });
    }
    this.onDead(this);
  }

  /** Why it died ('' while alive). */
  get reason(): string {
    return this.deadReason;
  }

  /** Resolves once the process has exited (at once if it never started or already ended). */
  exited(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => child.once('exit', () => resolve()));
  }
}

/** A memory figure of a process from /proc/PID/status, in MB (0 when it cannot be read). */
function readStatusMB(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  if (pid === undefined) return 0;
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Math.ceil(Number(kb) / 1024);
  } catch {
    return 0;
  }
}

function errorTypeOf(body: Buffer): string | undefined {
  try {
    const doc = JSON.parse(body.toString()) as unknown;
    if (typeof doc === 'object' && doc !== null && 'errorType' in doc && typeof doc.errorType === 'string') return doc.errorType;
  } catch {
    // not JSON
  }
  return undefined;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads a request body up to `limit` bytes; the rest is drained and dropped, and `overflow` says so. */
export async function readLimited(req: IncomingMessage, limit: number): Promise<{ body: Buffer; overflow: boolean; length: number }> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length <= limit) chunks.push(chunk);
  }
  return { body: length <= limit ? Buffer.concat(chunks) : Buffer.alloc(0), overflow: length > limit, length };
}
