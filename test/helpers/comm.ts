import type { Connection, Message } from '../../src/comm/connection.js';
import { connect, type ConnectOptions } from '../../src/comm/dial.js';
import { listen, type ListenOptions, type Server } from '../../src/comm/server.js';

/** A server (kept in `servers`, to close) whose connections are handed over, and a client connected to it. */
export async function serverAndClient<M extends Message>(
  servers: Server<M>[],
  serverOptions: Partial<ListenOptions<M>> = {},
  clientOptions: Partial<ConnectOptions> = {},
): Promise<{ server: Server<M>; client: Connection<M>; remote: Connection<M> }> {
  let handOver: (conn: Connection<M>) => void = () => {};
  const accepted = new Promise<Connection<M>>((resolve) => {
    handOver = resolve;
  });
  const server = await listen<M>({ port: 0, onConnection: (conn) => handOver(conn), ...serverOptions });
  servers.push(server);
  const client = await connect<M>(server.address, { role: 'test', ...clientOptions });
  return { server, client, remote: await accepted };
}

/** The next `count` messages `conn` receives (it becomes their handler). */
export function receive<M extends Message>(conn: Connection<M>, count: number): Promise<M[]> {
  return new Promise((resolve) => {
    const got: M[] = [];
    conn.onMessage((message) => {
      got.push(message);
      if (got.length === count) resolve(got);
    });
  });
}
