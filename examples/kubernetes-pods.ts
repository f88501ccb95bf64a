// examples/kubernetes-pods.ts — worker pods shaped for the nodes they run on: CPUs and
// memory, a node pool, a toleration, and any part of the pod manifest laid over Tessera's.
import { KubernetesCluster } from 'tessera/kubernetes';

const cluster = await KubernetesCluster.start({
  image: 'registry.example/tessera:0.1.0',
  threadsPerWorker: 2,
  memoryLimit: '4Gi',
  nodeSelector: { 'cloud.example/pool': 'spot' },
  tolerations: [{ key: 'spot', operator: 'Exists', effect: 'NoSchedule' }],
  template: { spec: { priorityClassName: 'batch', containers: [{ name: 'worker', volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] }], volumes: [{ name: 'scratch', emptyDir: {} }] } },
});
await cluster.close();
