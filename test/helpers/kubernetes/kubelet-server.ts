/**
 * The part of the kubelet's HTTPS API the API server calls for a node agent:
 * `GET /containerLogs/{namespace}/{pod}/{container}` (what `kubectl logs` and pods/log
 * reach), `/portForward/{namespace}/{pod}` (what pods/portforward reaches: a WebSocket of
 * the channel protocol, as the kubelet serves it) and `/healthz`. It serves a certificate from the cluster CA, which the API server
 * verifies (--kubelet-certificate-authority), and accepts only clients with a certificate
 * from that CA (the API server's --kubelet-client-certificate).
 */
import { createServer, type Server } from 'node:https';
import { type AddressInfo, connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ContainerLog, LogQuery, LogStream } from './container-log.js';

interface NotServed {
  status: number;
  message: string;
}

/** What the server needs from the agent: a container's log, or why there is none. */
export type LogLookup = (namespace: string, pod: string, container: string, previous: boolean) => ContainerLog | NotServed;
/** A running pod's IP, or why it has none. */
export type PodIpLookup = (namespace: string, pod: string) => string | NotServed;

export interface KubeletServerOptions {
  certPem: string;
  keyPem: string;
  clientCaPem: string;
  lookup: LogLookup;
  podIp: PodIpLookup;
}

/** The kubelet's WebSocket port-forward protocols: channel byte first, binary frames. */
const CHANNEL_PROTOCOLS = ['v4.channel.k8s.io', 'channel.k8s.io'];

function refuse(socket: Duplex, status: number, message: string): void {
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}`);
}

/**
 * One WebSocket forwarding `ports` of the pod at `ip`: port i on channels 2i (data) and
 * 2i+1 (errors), each opened with the port number (two bytes, little-endian).
 */
function forwardPorts(ws: WebSocket, ip: string, ports: readonly number[]): void {
  const sockets: Socket[] = [];
  const send = (channel: number, data: Buffer | string, done?: () => void): void => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(Buffer.concat([Buffer.of(channel), typeof data === 'string' ? Buffer.from(data) : data]), done);
  };
  ports.forEach((port, i) => {
    const header = Buffer.of(port & 0xff, port >> 8);
    send(2 * i, header);
    send(2 * i + 1, header);
    const socket = connect(port, ip);
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      socket.pause();
      send(2 * i, chunk, () => socket.resume());
    });
    socket.on('error', (error) => send(2 * i + 1, `error forwarding port ${port} to pod at ${ip}: ${error.message}`));
    socket.on('close', () => ws.close(1000));
  });
  ws.on('message', (data: Buffer) => {
    const channel = data[0];
    if (channel === undefined || channel % 2 === 1) return;
    sockets[channel / 2]?.write(data.subarray(1));
  });
  ws.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  ws.on('error', () => ws.terminate());
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
  const sockets = new WebSocketServer({ noServer: true, handleProtocols: (offered) => CHANNEL_PROTOCOLS.find((p) => offered.has(p)) ?? false });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const match = /^\/portForward\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      refuse(socket, 404, `${url.pathname} is not served by this node agent`);
      return;
    }
    const [namespace, pod] = match.slice(1).map(decodeURIComponent) as [string, string];
    // The API server passes the ports as `port` (the kubelet's name); clients say `ports`.
    const asked = [...url.searchParams.getAll('port'), ...url.searchParams.getAll('ports')];
    const ports = asked.flatMap((p) => p.split(',')).map(Number);
    if (ports.length === 0 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
      refuse(socket, 400, `ports must be port numbers, got ${JSON.stringify(asked)}`);
      return;
    }
    const ip = options.podIp(namespace, pod);
    if (typeof ip !== 'string') {
      refuse(socket, ip.status, ip.message);
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => forwardPorts(ws, ip, ports));
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
        for (const ws of sockets.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
