/**
 * The worker's own small HTTP server: `GET /metrics` (Prometheus text) and `GET /health`,
 * so a scraper or a liveness probe need not go through the scheduler.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearerToken, isLoopback, shownHost, tokenDigest, tokenMatches } from '../comm/http.js';
import { METRICS_CONTENT_TYPE } from '../comm/prometheus.js';
import { ListenError } from '../comm/errors.js';

/**
 * Serves `/metrics` and `/health`. `/health` stays open (liveness probes carry no token);
 * `/metrics` wants the cluster token as a bearer token when the server is reachable from
 * other machines and the worker has one, as the scheduler's dashboard does.
 */
export async function startMetricsServer(
  host: string,
  port: number,
  token: string | undefined,
  body: () => string | undefined,
): Promise<HttpServer> {
  const expected = token === undefined || isLoopback(host) ? undefined : tokenDigest(token);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, type: string, text: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const plain = 'text/plain; charset=utf-8';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, plain, `method ${req.method ?? '?'} not allowed\n`);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://worker.invalid').pathname;
    if (path !== '/metrics' && path !== '/health') {
      send(404, plain, `not found: ${path} (this worker serves /metrics and /health)\n`);
      return;
    }
    const text = body();
    if (text === undefined) {
      send(503, plain, 'the worker is not running\n');
      return;
    }
    if (path === '/health') {
      send(200, plain, 'ok');
      return;
    }
    const auth = req.headers.authorization;
    if (expected !== undefined && !tokenMatches(bearerToken(auth), expected)) {
      res.setHeader('www-authenticate', 'Bearer realm="tessera-worker"');
      send(401, plain, 'unauthorized: send the cluster token as "Authorization: Bearer TOKEN"\n');
      return;
    }
    send(200, METRICS_CONTENT_TYPE, text);
  });
  // Idle keep-alive sockets of a scraper would otherwise hold close() up.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be listened on (${error.message})`;
      reject(new ListenError(`http://${host}:${port}`, { cause: error, hint: `metrics port ${port} on ${host} ${why}: pick another (--metrics-port), 0 for a free one, or turn metrics off` }));
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server;
}

export function closeHttp(server: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export function httpBase(server: HttpServer): string {
  const { address, port } = server.address() as AddressInfo;
  return `http://${shownHost(address)}:${port}`;
}

