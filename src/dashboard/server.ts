/**
 * The dashboard's HTTP server: the page, `/health`, `/metrics`, the JSON API and the live
 * feed, all read from a `DashboardSource`.
 *
 * ```ts
 * const dashboard = await startDashboard({ source, port: 8787 });
 * console.log(`dashboard at ${dashboard.url}`);
 * // ...
 * await dashboard.close();
 * ```
 *
 * It binds to loopback unless told otherwise. Bound anywhere else (or `exposed: true`,
 * for a loopback port that a proxy or port-forward publishes) it requires a token and
 * checks it on every request: `Authorization: Bearer TOKEN`, or `?token=TOKEN` once, which
 * sets an HttpOnly cookie so the page and its live feed (EventSource cannot send headers)
 * carry it from then on.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bearerToken, isLoopback, shownHost, tokenDigest, tokenMatches } from '../comm/http.js';
import { METRICS_CONTENT_TYPE } from '../comm/prometheus.js';
import { IllegalStateError, InvalidArgumentError, TesseraError } from '../errors.js';
import { checkOptions, optionNames } from '../options.js';
import { attemptAll, Resource } from '../lifecycle.js';
import {
  adaptiveTargetBody,
  MAX_TASK_STREAM_LIMIT,
  scalingBody,
  taskStreamBody,
  tasksBody,
  workersBody,
} from './api.js';
import { type FeedOptions, type FeedStats, LiveFeed } from './feed.js';
import { schedulerMetricsText } from './metrics.js';
import type { DashboardSource } from './source.js';

export interface DashboardOptions {
  readonly source: DashboardSource;
  /** Interface to bind. Default '127.0.0.1'. */
  readonly host?: string;
  /** Default 8787; 0, or a port in use, picks a free one (see `url`). */
  readonly port?: number;
  /** Required when exposed; checked on every request whenever given. */
  readonly token?: string;
  /** Treat the dashboard as reachable by others (requires `token`). Default: true iff `host` is not loopback. */
  readonly exposed?: boolean;
  /**
   * Live updates at most this often, milliseconds. Default 1,000: the cadence of the
   * adaptive loop's samples and of the worker list, and the rate at which a browser on the
   * same two-core machine as a busy cluster slows it by less than 5% (each update is a
   * frame the browser must lay out, paint and composite).
   */
  readonly updateIntervalMs?: number;
  /** Task-stream entries in one live update at most (an even sample when more finished). Default 2,000. */
  readonly maxStreamEntries?: number;
  /** How much task stream the page keeps, milliseconds. Default 30,000. */
  readonly streamWindowMs?: number;
  /** Bytes a live page may leave unread before its updates are skipped. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** A live page that stays over `maxBufferedBytes` this long is disconnected, ms. Default 15,000. */
  readonly stallTimeoutMs?: number;
  /** Live pages at once. Default 32. */
  readonly maxClients?: number;
  /** Where the built page is. Default: `static/` beside this module. */
  readonly staticDir?: string;
  /** Whether it keeps the process alive, open pages included (default true). */
  readonly keepAlive?: boolean;
}

export interface Dashboard {
  /** Where to open the page (the actual port, after a busy or 0 port was replaced). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly exposed: boolean;
  /** Live-feed bookkeeping, for tests and diagnostics. */
  feedStats(): FeedStats;
  /** Stops serving, ends live feeds, closes every socket. Idempotent. */
  close(): Promise<void>;
}

interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly exposed: boolean;
  readonly staticDir: string;
  readonly feed: FeedOptions;
}

const COOKIE = 'tessera_dashboard_token';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

const PAGE_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const DASHBOARD_OPTIONS = optionNames<DashboardOptions>()([
  'source', 'host', 'port', 'token', 'exposed', 'updateIntervalMs', 'maxStreamEntries', 'streamWindowMs', 'maxBufferedBytes', 'stallTimeoutMs', 'maxClients', 'staticDir', 'keepAlive',
]);

function resolveOptions(o: DashboardOptions): ResolvedOptions {
  checkOptions(o, DASHBOARD_OPTIONS, 'startDashboard()');
  const s = (o as Partial<DashboardOptions> | undefined)?.source as Partial<DashboardSource> | undefined;
  if (typeof s !== 'object' || typeof s.snapshot !== 'function' || typeof s.counters !== 'function' || typeof s.taskStream !== 'function') {
    throw new InvalidArgumentError('options.source must be a DashboardSource (snapshot, scaling, adaptiveTarget, taskStream, counters)');
  }
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw new InvalidArgumentError('options.host must be a non-empty string');
  const port = o.port ?? 8787;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('options.port must be an integer from 0 to 65535');
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token === '')) {
    throw new InvalidArgumentError('options.token must be a non-empty string');
  }
  if (o.exposed !== undefined && typeof o.exposed !== 'boolean') throw new InvalidArgumentError('options.exposed must be a boolean');
  const exposed = o.exposed ?? !isLoopback(host);
  if (!exposed && !isLoopback(host)) {
    throw new InvalidArgumentError(`options.exposed cannot be false when options.host ('${host}') is not a loopback address`);
  }
  if (exposed && o.token === undefined) {
    throw new InvalidArgumentError(
      `options.token is required when the dashboard is exposed (host '${host}'${o.exposed === true ? ', exposed: true' : ''}): ` +
        'pass the cluster token, or bind to 127.0.0.1',
    );
  }
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`options.${name} must be a positive number`);
    return v;
  };
  const integer = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`options.${name} must be a positive integer`);
    return v;
  };
  if (o.staticDir !== undefined && (typeof o.staticDir !== 'string' || o.staticDir === '')) {
    throw new InvalidArgumentError('options.staticDir must be a non-empty string');
  }
  const intervalMs = positive('updateIntervalMs', o.updateIntervalMs, 1000);
  return {
    host,
    port,
    token: o.token,
    exposed,
    staticDir: o.staticDir ?? fileURLToPath(new URL('./static/', import.meta.url)),
    feed: {
      intervalMs,
      maxStreamEntries: integer('maxStreamEntries', o.maxStreamEntries, 2000),
      streamWindowMs: positive('streamWindowMs', o.streamWindowMs, 30_000),
      workersIntervalMs: Math.max(1000, intervalMs),
      maxPrefixes: 200,
      maxWorkerRows: 5000,
      maxBufferedBytes: integer('maxBufferedBytes', o.maxBufferedBytes, 1 << 20),
      stallTimeoutMs: positive('stallTimeoutMs', o.stallTimeoutMs, 15_000),
      maxClients: integer('maxClients', o.maxClients, 32),
      keepAliveMs: 15_000,
    },
  };
}

/** The built page's files, read once: they are small and never change while serving. */
function loadStatic(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const type = CONTENT_TYPES[extname(name)];
    if (type === undefined || !statSync(path).isFile()) continue;
    files.set(`/${name}`, { body: readFileSync(path), type });
  }
  return files;
}


class HttpError extends TesseraError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message, 'ERR_DASHBOARD_HTTP');
    this.name = 'HttpError';
    this.status = status;
  }
}

export class DashboardServer extends Resource implements Dashboard {
  readonly options: ResolvedOptions;
  readonly #source: DashboardSource;
  readonly #server: Server;
  readonly #feed: LiveFeed;
  readonly #files: Map<string, { body: Buffer; type: string }>;
  readonly #tokenDigest: Buffer | undefined;
  /** Bound and serving (set by listen(); a closed dashboard is no longer). */
  #listening = false;
  #port = 0;

  constructor(options: DashboardOptions) {
    super('the dashboard');
    this.options = resolveOptions(options);
    this.#source = options.source;
    this.#tokenDigest = this.options.token === undefined ? undefined : tokenDigest(this.options.token);
    this.#files = loadStatic(this.options.staticDir);
    this.#feed = new LiveFeed(this.#source, this.options.feed);
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Idle keep-alive sockets would otherwise hold close() up.
    this.#server.keepAliveTimeout = 5000;
    if (options.keepAlive === false) {
      this.#server.unref();
      this.#server.on('connection', (socket) => socket.unref());
    }
  }

  get host(): string {
    return this.options.host;
  }

  get port(): number {
    return this.#port;
  }

  get exposed(): boolean {
    return this.options.exposed;
  }

  get url(): string {
    return `http://${shownHost(this.options.host)}:${this.#port}/`;
  }

  /** Binds; a port in use is replaced by a free one. */
  async listen(): Promise<void> {
    this.assertRunning();
    if (this.#listening) throw new IllegalStateError('the dashboard is already listening');
    try {
      await this.#bind(this.options.port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || this.options.port === 0) throw error;
      await this.#bind(0);
    }
    this.#listening = true;
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  feedStats(): FeedStats {
    return this.#feed.stats();
  }

  protected async onClose(): Promise<void> {
    const wasListening = this.#listening;
    this.#listening = false;
    await attemptAll([
      () => this.#feed.close(),
      () =>
        wasListening &&
        new Promise<void>((resolve) => {
          this.#server.close(() => resolve());
          this.#server.closeAllConnections();
        }),
    ]);
  }

  #bind(port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.#server.off('listening', onListening);
        reject(error);
      };
      const onListening = (): void => {
        this.#server.off('error', onError);
        resolve();
      };
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen({ host: this.options.host, port, exclusive: true });
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    try {
      if (!this.#listening) throw new HttpError(503, 'the dashboard is closing');
      const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
      if (!this.#authorize(req, res, url)) return;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        throw new HttpError(405, `method ${req.method ?? '?'} not allowed`);
      }
      this.#route(req, res, url);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      sendText(res, status, `${message}\n`);
    }
  }

  #route(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const source = this.#source;
    switch (url.pathname) {
      case '/health':
        sendText(res, 200, 'ok');
        return;
      case '/metrics':
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(schedulerMetricsText(source));
        return;
      case '/api/v1/workers':
        sendJson(res, workersBody(source));
        return;
      case '/api/v1/tasks':
        sendJson(res, tasksBody(source));
        return;
      case '/api/v1/scaling':
        sendJson(res, scalingBody(source, numberParam(url, 'since', -Infinity)));
        return;
      case '/api/v1/adaptive-target':
        sendJson(res, adaptiveTargetBody(source));
        return;
      case '/api/v1/task-stream': {
        const limit = numberParam(url, 'limit', 10_000);
        if (!Number.isInteger(limit) || limit <= 0 || limit > MAX_TASK_STREAM_LIMIT) {
          throw new HttpError(400, `limit must be an integer from 1 to ${MAX_TASK_STREAM_LIMIT}`);
        }
        sendJson(res, taskStreamBody(source, numberParam(url, 'since', -Infinity), limit));
        return;
      }
      case '/api/v1/events':
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
          res.end();
          return;
        }
        this.#feed.attach(req, res);
        return;
      default:
        this.#serveFile(res, url.pathname === '/' ? '/index.html' : url.pathname);
    }
  }

  #serveFile(res: ServerResponse, path: string): void {
    const file = this.#files.get(path);
    if (file === undefined) {
      if (path === '/index.html') {
        throw new HttpError(503, `the dashboard page is not built (no ${join(this.options.staticDir, 'index.html')}): run \`npm run build\``);
      }
      throw new HttpError(404, `not found: ${path}`);
    }
    const headers: Record<string, string> = { 'content-type': file.type, 'content-length': String(file.body.length), 'cache-control': 'no-cache' };
    if (path === '/index.html') headers['content-security-policy'] = PAGE_CSP;
    res.writeHead(200, headers);
    res.end(file.body);
  }

  /** Checks the token (when there is one) and, without one, that the Host is loopback. */
  #authorize(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const expected = this.#tokenDigest;
    if (expected === undefined) {
      // Unauthenticated loopback only: refuse other Host names, so a web page cannot reach
      // the dashboard by rebinding its own domain name to 127.0.0.1.
      const host = hostOf(req.headers.host);
      if (host !== undefined && !isLoopback(host) && host !== this.options.host) {
        throw new HttpError(403, `requests for host '${host}' are refused: the dashboard serves loopback only`);
      }
      return true;
    }
    const matches = (candidate: string | undefined): boolean => tokenMatches(candidate, expected);
    if (matches(bearerToken(req.headers.authorization))) return true;
    if (matches(cookieValue(req.headers.cookie, COOKIE))) return true;
    const fromQuery = url.searchParams.get('token') ?? undefined;
    if (matches(fromQuery)) {
      const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
      res.setHeader('set-cookie', `${COOKIE}=${encodeURIComponent(fromQuery ?? '')}; HttpOnly; SameSite=Strict; Path=/${secure}`);
      if (url.pathname === '/' || url.pathname === '/index.html') {
        // Take the token out of the address bar and history.
        url.searchParams.delete('token');
        res.writeHead(303, { location: `${url.pathname}${url.search}` });
        res.end();
        return false;
      }
      return true;
    }
    res.setHeader('www-authenticate', 'Bearer realm="tessera-dashboard"');
    sendText(res, 401, 'unauthorized: send the cluster token as "Authorization: Bearer TOKEN", or open the page once with ?token=TOKEN\n');
    return false;
  }
}

/** Validates options, binds, and serves. Rejects with `InvalidArgumentError` naming a bad option. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const server = new DashboardServer(options);
  await server.listen();
  return server;
}

function hostOf(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    return end < 0 ? header : header.slice(0, end + 1);
  }
  const colon = header.lastIndexOf(':');
  return colon < 0 ? header : header.slice(0, colon);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function numberParam(url: URL, name: string, dflt: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return dflt;
  const v = Number(raw);
  if (Number.isNaN(v)) throw new HttpError(400, `${name} must be a number (milliseconds on the scheduler's clock for since)`);
  return v;
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}
