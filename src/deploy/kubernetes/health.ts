/**
 * `GET /health` for the scheduler pod's probes, on a port of its own: 200 while the
 * scheduler runs and the backend watches its pods, 503 otherwise. It answers without the
 * cluster token (a probe carries none) and says nothing else.
 */
import { createServer, type Server } from 'node:http';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(host: string, port: number, healthy: () => boolean): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://scheduler.invalid').pathname;
    const ok = path === '/health' && healthy();
    res.writeHead(path === '/health' ? (ok ? 200 : 503) : 404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(path === '/health' ? (ok ? 'ok' : 'not ready') : 'not found');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
