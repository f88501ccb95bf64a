import { availableParallelism, hostname, totalmem } from 'node:os';
import type { ClientTlsOptions } from '../comm/index.js';
import { InvalidArgumentError } from '../errors.js';

export interface WorkerOptions {
  /** The scheduler's address, `tcp://host:port`. */
  readonly scheduler: string;
  readonly token?: string;
  /**
   * TLS material. `ca` (and `servername`, `rejectUnauthorized`) is used when dialling a
   * tls:// scheduler and tls:// peers; with `cert` and `key` the worker also serves its
   * data port over TLS (address `tls://…`) and presents them as its client certificate.
   */
  readonly tls?: WorkerTlsOptions;
  /** Threads that run tasks. Default: the machine's available parallelism. */
  readonly nthreads?: number;
  /** Bytes, or a string such as '2GB' or '512MiB'. Default: the machine's memory. */
  readonly memoryLimit?: number | string;
  /**
   * Fraction of memoryLimit past which the least recently used results are spilled to
   * disk. Default 0.6; false never spills.
   */
  readonly memoryTarget?: number | false;
  /**
   * Fraction of memoryLimit of the process's resident memory past which the worker takes
   * no new tasks until it falls below again. Default 0.8; false never pauses.
   */
  readonly memoryPause?: number | false;
  /** Where spilled results go. Default: a fresh folder under the OS temp directory. */
  readonly spillDirectory?: string;
  /** Default: host-pid. */
  readonly name?: string;
  /**
   * Accept connections from peers and clients for data (default true). A worker that
   * cannot (behind NAT, serverless) passes false; its data then travels through the
   * scheduler's relay.
   */
  readonly listen?: boolean;
  /** Interface to listen on for peers. Default: the one that reaches the scheduler. */
  readonly host?: string;
  /**
   * Port of the worker's own HTTP server for `GET /metrics` (Prometheus text) and
   * `GET /health`, on the same interface as its data port. Default 0: a free port; false:
   * no server. A fixed port that is taken fails the start, since a scraper expects it there.
   */
  readonly metricsPort?: number | false;
  /** Milliseconds between heartbeats. Default 1000. */
  readonly heartbeatInterval?: number;
  /** Milliseconds to reach the scheduler (retrying while it starts). Default 30 000. */
  readonly connectTimeout?: number;
  /** Where trouble is reported. Default: stderr. */
  readonly log?: (line: string) => void;
  /**
   * Check the task bookkeeping's invariants after every event (slow; for tests and
   * debugging). Default: on when the environment has TESSERA_VALIDATE=1, so the workers a
   * cluster starts can be checked too.
   */
  readonly validate?: boolean;
}

/** A worker's TLS material: a certificate and key to serve with, and a CA to trust. */
export interface WorkerTlsOptions extends ClientTlsOptions {
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly ca?: string | Buffer;
}

export interface ResolvedWorkerOptions {
  readonly scheduler: string;
  readonly token: string | undefined;
  readonly tls: WorkerTlsOptions | undefined;
  readonly nthreads: number;
  readonly memoryLimit: number;
  /** Bytes; Infinity when spilling is off. */
  readonly memoryTarget: number;
  /** Bytes; Infinity when pausing is off. */
  readonly memoryPause: number;
  readonly spillDirectory: string | undefined;
  readonly name: string;
  readonly listen: boolean;
  readonly host: string | undefined;
  readonly metricsPort: number | false;
  readonly heartbeatInterval: number;
  readonly connectTimeout: number;
  readonly log: (line: string) => void;
  readonly validate: boolean;
}

export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  if (typeof (options as unknown) !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('options must be an object');
  const { scheduler, token, nthreads = availableParallelism(), name = `${hostname()}-${process.pid}` } = options;
  if (typeof scheduler !== 'string' || scheduler === '') throw new InvalidArgumentError('options.scheduler must be an address such as tcp://host:8786');
  if (token !== undefined && typeof token !== 'string') throw new InvalidArgumentError('options.token must be a string');
  if (!Number.isInteger(nthreads) || nthreads < 1) throw new InvalidArgumentError(`options.nthreads must be a positive integer, got ${String(nthreads)}`);
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('options.name must be a non-empty string');
  const memoryLimit = options.memoryLimit === undefined ? totalmem() : parseBytes(options.memoryLimit, 'memoryLimit');
  const fraction = (option: string, value: number | false | undefined, fallback: number): number => {
    if (value === false) return Infinity;
    const f = value ?? fallback;
    if (typeof f !== 'number' || !(f > 0)) throw new InvalidArgumentError(`options.${option} must be a positive fraction of memoryLimit or false, got ${String(f)}`);
    return Math.floor(f * memoryLimit);
  };
  const memoryTarget = fraction('memoryTarget', options.memoryTarget, 0.6);
  const memoryPause = fraction('memoryPause', options.memoryPause, 0.8);
  if (options.spillDirectory !== undefined && (typeof options.spillDirectory !== 'string' || options.spillDirectory === '')) {
    throw new InvalidArgumentError('options.spillDirectory must be a non-empty string');
  }
  if (options.tls !== undefined) {
    const tls: unknown = options.tls;
    if (typeof tls !== 'object' || tls === null) throw new InvalidArgumentError('options.tls must be an object');
    if ((options.tls.cert === undefined) !== (options.tls.key === undefined)) {
      throw new InvalidArgumentError('options.tls needs both cert and key to serve over TLS, or neither');
    }
  }
  const listen = options.listen ?? true;
  if (typeof listen !== 'boolean') throw new InvalidArgumentError('options.listen must be a boolean');
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    throw new InvalidArgumentError('options.host must be a non-empty string');
  }
  const metricsPort = options.metricsPort ?? 0;
  if (metricsPort !== false && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    throw new InvalidArgumentError(`options.metricsPort must be a port from 0 to 65535 or false, got ${String(metricsPort)}`);
  }
  const heartbeatInterval = options.heartbeatInterval ?? 1000;
  if (typeof heartbeatInterval !== 'number' || !(heartbeatInterval >= 10)) {
    throw new InvalidArgumentError(`options.heartbeatInterval must be a number of milliseconds >= 10, got ${String(heartbeatInterval)}`);
  }
  const connectTimeout = options.connectTimeout ?? 30_000;
  if (typeof connectTimeout !== 'number' || !(connectTimeout >= 1)) {
    throw new InvalidArgumentError(`options.connectTimeout must be a positive number of milliseconds, got ${String(connectTimeout)}`);
  }
  if (options.log !== undefined && typeof options.log !== 'function') throw new InvalidArgumentError('options.log must be a function');
  const log = options.log ?? ((line: string) => process.stderr.write(`tessera worker ${name}: ${line}\n`));
  if (options.validate !== undefined && typeof options.validate !== 'boolean') throw new InvalidArgumentError('options.validate must be a boolean');
  const validate = options.validate ?? process.env['TESSERA_VALIDATE'] === '1';
  return {
    scheduler,
    token,
    tls: options.tls,
    nthreads,
    memoryLimit,
    memoryTarget,
    memoryPause,
    spillDirectory: options.spillDirectory,
    name,
    listen,
    host: options.host,
    metricsPort,
    heartbeatInterval,
    connectTimeout,
    log,
    validate,
  };
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** 2GB, 512MiB, 1e9, 1.5 GB → bytes. */
export function parseBytes(value: number | string, option: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`options.${option} must be a positive number of bytes`);
    return Math.floor(value);
  }
  const match = typeof value === 'string' ? /^\s*([\d.]+(?:e\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value) : null;
  const unit = match === null ? undefined : UNITS[match[2]!.toLowerCase()];
  const amount = match === null ? NaN : Number(match[1]);
  if (unit === undefined || !Number.isFinite(amount) || amount <= 0) {
    throw new InvalidArgumentError(`options.${option} must be bytes or a size such as '2GB' or '512MiB', got ${JSON.stringify(value)}`);
  }
  return Math.floor(amount * unit);
}
