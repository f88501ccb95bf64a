// Which TCP connections this process opens while something runs: to show that a client
// reached only the scheduler, never a worker.
import { Socket } from 'node:net';

/** Every TCP connection this process opens while `body` runs: `host:port`. */
export async function dialledDuring(body: () => Promise<void>): Promise<string[]> {
  const dialled: string[] = [];
  const proto = Socket.prototype as unknown as { connect: (this: Socket, ...args: unknown[]) => Socket };
  const original = proto.connect;
  proto.connect = function (this: Socket, ...args: unknown[]) {
    const first = args[0] as { host?: string; port?: number } | number;
    dialled.push(typeof first === 'number' ? `:${first}` : `${first.host ?? ''}:${first.port ?? ''}`);
    return original.apply(this, args);
  };
  try {
    await body();
  } finally {
    proto.connect = original;
  }
  return dialled;
}
