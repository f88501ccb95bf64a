// examples/kubernetes-in-pod.ts — a notebook or job in the scheduler's namespace: the
// Service's name and the token (mounted from the Secret tessera-token).
import { Client } from 'tessera';

const token = process.env['TESSERA_TOKEN'];
if (token === undefined) throw new Error('set TESSERA_TOKEN from the Secret tessera-token');
const client = await Client.connect('tcp://tessera-scheduler:8786', { token });
const squares = await client.gather(client.map((x: number) => x * x, [1, 2, 3]));
console.log(squares);                                         // [1, 4, 9]
await client.close();
