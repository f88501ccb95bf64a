// examples/kubernetes-scheduler.ts — the backend alone, in a process of your own running
// in a pod: a Scheduler on the pod's network with the cluster token, and worker pods
// following the work.
import { Scheduler } from 'tessera';
import { KubernetesBackend } from 'tessera/kubernetes';

const token = process.env['TESSERA_TOKEN'];
if (token === undefined) throw new Error('set TESSERA_TOKEN from the Secret tessera-token');
const scheduler = await Scheduler.start({ host: '0.0.0.0', port: 8786, token });
const backend = await KubernetesBackend.start({
  scheduler: `tcp://${process.env['POD_IP']}:8786`,   // what workers dial
  image: 'registry.example/tessera:0.1.0',
  cluster: 'analysis',
  token: { secret: 'tessera-token' },
});
scheduler.adapt(backend, { minimum: 0, maximum: 50 });
