import { Client, LocalCluster } from 'tessera';
import { inc, treeGraph } from './workloads.js';
const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
const client = await Client.connect(cluster.address);
for (let r = 0; r < 3; r++) {
  const items = Array.from({ length: 100_000 }, (_, i) => i);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const futures = client.map(inc, items);
  await client.gather(futures);
  const c1 = process.cpuUsage(c0);
  console.log('map', (performance.now() - t0) * 10, 'us/task', (c1.user + c1.system) / 1e5, 'cpu us/task');
  const tree = treeGraph(50_000);
  const t1 = performance.now();
  await client.get(tree.graph, [tree.root]);
  console.log('tree', (performance.now() - t1) * 1e3 / tree.tasks, 'us/task');
}
await client.close();
await cluster.close();
