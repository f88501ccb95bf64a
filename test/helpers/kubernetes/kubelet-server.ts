/**
 * The part of the kubelet's HTTPS API the API server calls for a node agent:
 * `GET /containerLogs/{namespace}/{pod}/{container}` (what `kubectl logs` and pods/log
 * reach) and `/healthz`. It serves a certificate from the cluster CA, which the API server
 * verifies (--kubelet-certificate-authority), and accepts only clients with a certificate
 * from that CA (the API server's --kubelet-client-certificate).
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ContainerLog, LogQuery, LogStream } from './container-log.js';

/** What the server needs from the agent: a container's log, or why there is none. */
export type LogLookup = (namespace: string, pod: string, container: string, previous: boolean) => ContainerLog | { status: number; message: string };

export interface KubeletServerOptions {
  certPem: string;
  keyPem: string;
  clientCaPem: string;
  lookup: LogLookup;
}

function integer(value: string | null): number | undefined {
  if (value === null || !/^-?\d+$/.test(value)) return undefined;
  return Number(value);
}

export async function startKubeletServer(options: KubeletServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const aborts = new Set<AbortController>();
  const server: Server = createServer({ cert: options.certPem, key: options.keyPem, ca: options.clientCaPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`${url.pathname} is not served by this node agent`);
      return;
    }
    const [namespace, pod, container] = match.slice(1).map(decodeURIComponent) as [string, string, string];
    const q = url.searchParams;
    const found = options.lookup(namespace, pod, container, q.get('previous') === 'true');
    if (!('read' in found)) {
      res.writeHead(found.status, { 'content-type': 'text/plain' }).end(found.message);
      return;
    }
    const stream = q.get('stream');
    const query: LogQuery = {
      follow: q.get('follow') === 'true',
      timestamps: q.get('timestamps') === 'true',
      ...(integer(q.get('tailLines')) === undefined ? {} : { tailLines: integer(q.get('tailLines'))! }),
      ...(integer(q.get('sinceSeconds')) === undefined ? {} : { sinceSeconds: integer(q.get('sinceSeconds'))! }),
      ...(integer(q.get('limitBytes')) === undefined ? {} : { limitBytes: integer(q.get('limitBytes'))! }),
      ...(stream === 'Stdout' || stream === 'Stderr' ? { stream: stream.toLowerCase() as LogStream } : {}),
    };
    const abort = new AbortController();
    aborts.add(abort);
    res.on('close', () => abort.abort());
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    found
      .read(query, (text) => res.write(text), abort.signal)
      .finally(() => {
        aborts.delete(abort);
        res.end();
      })
      .catch(() => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const abort of aborts) abort.abort();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
