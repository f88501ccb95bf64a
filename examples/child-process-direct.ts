// examples/child-process-direct.ts: a scheduler that adapts through the backend of examples/child-process-backend.ts.
import { Client, Scheduler } from 'tessera';
import { ChildProcessBackend } from './child-process-backend.js';

const scheduler = await Scheduler.start({ port: 0, dashboard: false });
const backend = new ChildProcessBackend({ address: scheduler.address, threadsPerWorker: 2 });
scheduler.adapt(backend, { minimum: 0, maximum: 2 });
const client = await Client.connect(scheduler.address);   // clients connect and submit …
console.log(await client.gather(client.map((x: number) => x * x, [1, 2, 3])));   // [1, 4, 9]
await client.close();
scheduler.stopAdapting();
await backend.close();
await scheduler.close();
