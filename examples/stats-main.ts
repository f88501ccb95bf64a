// examples/stats-main.ts: uses the module function of examples/stats.ts, locally and on a cluster.
import { Client, LocalCluster, delayed } from 'tessera';
import { statements } from './stats.js';

const sources = ['let a = 1; a++;', 'console.log(1)', 'const x = 1; const y = 2; export { x, y };'];
const counts = sources.map((s) => delayed(statements)(s));
console.log(await Promise.all(counts.map((c) => c.compute())));   // [2, 1, 3], on local threads

await using cluster = await LocalCluster.start({ workers: 1 });
const client = await Client.connect(cluster);
console.log(await client.gather(client.map(statements, sources)));   // [2, 1, 3], bundled for the workers
