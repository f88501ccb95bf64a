// examples/kubernetes.ts — an adaptive cluster of worker pods, started from outside the
// cluster with the kubeconfig's credentials (KUBECONFIG, or ~/.kube/config). The namespace
// and the image can be set through TESSERA_KUBERNETES_NAMESPACE and TESSERA_IMAGE.
import { Client } from 'tessera';
import { KubernetesCluster } from 'tessera/kubernetes';

const namespace = process.env['TESSERA_KUBERNETES_NAMESPACE'] ?? 'analysis';
const image = process.env['TESSERA_IMAGE'] ?? 'registry.example/tessera:0.1.0';

const cluster = await KubernetesCluster.start({ namespace, image, workers: 0 });
await cluster.adapt({ minimum: 0, maximum: 50 });
const client = await Client.connect(cluster);                 // the address and the token
const total = await client.submit((...xs: number[]) => xs.reduce((a, b) => a + b, 0), ...client.map((x: number) => x * x, [1, 2, 3])).result();
console.log(`total: ${total}`);                               // 14
await client.close();
await cluster.close();                                        // deletes everything it created
