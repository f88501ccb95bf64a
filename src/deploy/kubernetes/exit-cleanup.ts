/**
 * What Tessera created in a cluster is deleted when the process that created it exits
 * without closing it: an uncaught exception, `process.exit()`, or a SIGINT/SIGTERM/SIGHUP
 * nobody else handles. An exit handler cannot wait for an HTTP request, so it starts a
 * small detached Node process that sends the DELETEs (with credentials taken ahead of
 * time) and outlives this one by a few seconds. Only SIGKILL escapes it; for that, owner
 * references let the API server's garbage collector finish the job.
 */
import { spawn } from 'node:child_process';
import type { KubeConfig } from '@kubernetes/client-node';

/** One DELETE, with everything needed to authenticate it. */
export interface CleanupRequest {
  readonly url: string;
  readonly body: string;
}

interface Credentials {
  readonly headers: Readonly<Record<string, string>>;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized?: boolean;
}

const providers = new Set<() => { credentials: Credentials | undefined; requests: readonly CleanupRequest[] }>();
let installed = false;
let ran = false;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

// Sends each request (in parallel), gives up after 15 s. Runs in its own process.
const SCRIPT = `
const https = require('node:https'), http = require('node:http');
const jobs = JSON.parse(process.env.TESSERA_KUBERNETES_CLEANUP || '[]');
setTimeout(() => process.exit(0), 15000).unref();
for (const job of jobs) {
  const { credentials, requests } = job;
  for (const r of requests) {
    const url = new URL(r.url);
    const lib = url.protocol === 'http:' ? http : https;
    const req = lib.request(url, { method: 'DELETE', headers: { ...credentials.headers, 'content-type': 'application/json' },
      ca: credentials.ca, cert: credentials.cert, key: credentials.key, rejectUnauthorized: credentials.rejectUnauthorized }, (res) => res.resume());
    req.on('error', () => {});
    req.end(r.body);
  }
}`;

function runAll(): void {
  if (ran) return;
  ran = true;
  const jobs = [...providers].map((p) => p()).filter((j) => j.credentials !== undefined && j.requests.length > 0);
  if (jobs.length === 0) return;
  try {
    const child = spawn(process.execPath, ['-e', SCRIPT], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env['PATH'] ?? '', TESSERA_KUBERNETES_CLEANUP: JSON.stringify(jobs) },
    });
    child.unref();
  } catch {
    // Nothing more can be done on the way out; the garbage collector is the last resort.
  }
}

function onSignal(signal: (typeof SIGNALS)[number]): void {
  // Someone else handles this signal (the tessera CLI closes everything gracefully):
  // leave it to them; the exit handler still runs if they exit without closing.
  if (process.listenerCount(signal) > 1) return;
  runAll();
  for (const s of SIGNALS) process.removeListener(s, signalHandlers[s]);
  process.kill(process.pid, signal);
}

const signalHandlers = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
  SIGHUP: () => onSignal('SIGHUP'),
} as const;

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  for (const s of SIGNALS) process.on(s, signalHandlers[s]);
}

/**
 * Registers what to delete if the process exits before `unregister()` is called. The
 * credentials are taken from `config` now and every few minutes (tokens expire).
 */
export function deleteOnExit(config: KubeConfig, requests: () => readonly CleanupRequest[]): () => void {
  let credentials: Credentials | undefined;
  const refresh = async (): Promise<void> => {
    const options: { headers?: Record<string, string>; ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; rejectUnauthorized?: boolean } = {};
    await config.applyToHTTPSOptions(options);
    credentials = {
      headers: { ...options.headers },
      ...(options.ca === undefined ? {} : { ca: options.ca.toString() }),
      ...(options.cert === undefined ? {} : { cert: options.cert.toString() }),
      ...(options.key === undefined ? {} : { key: options.key.toString() }),
      ...(options.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: options.rejectUnauthorized }),
    };
  };
  void refresh().catch(() => undefined);
  const timer = setInterval(() => void refresh().catch(() => undefined), 5 * 60_000);
  timer.unref();
  const provider = (): { credentials: Credentials | undefined; requests: readonly CleanupRequest[] } => ({ credentials, requests: requests() });
  providers.add(provider);
  install();
  return () => {
    clearInterval(timer);
    providers.delete(provider);
  };
}

/** The URL of a namespaced object, as the cleanup process deletes it. */
export function objectUrl(config: KubeConfig, path: string): string {
  const server = config.getCurrentCluster()?.server ?? '';
  return `${server.replace(/\/$/, '')}${path}`;
}
