/**
 * What kube-proxy does for a test cluster, in user space: each TCP port of each Service with
 * a cluster IP is listened on at clusterIP:port (the cluster IPs are loopback addresses, see
 * network.ts), and each connection goes to one of the Service's ready endpoints, in turn.
 *
 * The endpoints are the Service's selected pods that are Running, Ready, not terminating and
 * have an IP: what the EndpointSlice controller would publish, read from the pods directly
 * because the API does not accept loopback addresses in EndpointSlices. default/kubernetes
 * goes to the API server itself.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { CoreV1Api, type KubeConfig, type V1Pod, type V1Service, type V1ServicePort } from '@kubernetes/client-node';
import { type Informer, startInformer } from './informer.js';

export interface ServiceProxyOptions {
  /** Where default/kubernetes:443 goes: the API server's own host and port. */
  apiServer: { host: string; port: number };
  /** Called with a message when a listener cannot be opened or a connection finds no endpoint. */
  log?: (message: string) => void;
}

/** How long a connection waits for the Service to have an endpoint before it is reset. */
const NO_ENDPOINT_WAIT_MS = 2_000;

interface Listener {
  server: Server;
  key: string;
}

function selects(service: V1Service, pod: V1Pod): boolean {
  const selector = service.spec?.selector;
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  const labels = pod.metadata?.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function podReady(pod: V1Pod): boolean {
  return (
    pod.metadata?.deletionTimestamp === undefined &&
    pod.status?.phase === 'Running' &&
    (pod.status.podIP ?? '') !== '' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** The pod port a Service port's targetPort names, or undefined when the pod has no such named port. */
function targetPort(port: V1ServicePort, pod: V1Pod): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const container of pod.spec?.containers ?? []) {
    for (const containerPort of container.ports ?? []) {
      if (containerPort.name === target && (containerPort.protocol ?? 'TCP') === (port.protocol ?? 'TCP')) return containerPort.containerPort;
    }
  }
  return undefined;
}

export class ServiceProxy {
  private readonly listeners = new Map<string, Listener>();
  private readonly sockets = new Set<Socket>();
  private readonly services: Informer<V1Service>;
  private readonly pods: Informer<V1Pod>;
  private readonly turn = new Map<string, number>();
  private stopped = false;

  constructor(
    config: KubeConfig,
    private readonly options: ServiceProxyOptions,
  ) {
    const core = config.makeApiClient(CoreV1Api);
    this.services = startInformer<V1Service>(config, '/api/v1/services', () => core.listServiceForAllNamespaces(), {
      upsert: () => this.sync(),
      deleted: () => this.sync(),
    });
    this.pods = startInformer<V1Pod>(config, '/api/v1/pods', () => core.listPodForAllNamespaces(), {});
  }

  /** Resolves when both caches hold their first list and the listeners for it are open. */
  async ready(): Promise<void> {
    await Promise.all([this.services.synced, this.pods.synced]);
    this.sync();
    const opening = [...this.listeners.values()].filter((listener) => !listener.server.listening);
    await Promise.all(opening.map((listener) => new Promise((resolve) => listener.server.once('listening', resolve).once('error', resolve))));
  }

  /** The Services this proxy lists, for pod environments. */
  servicesIn(namespace: string): V1Service[] {
    const own = this.services.list(namespace);
    const kubernetes = this.services.get('kubernetes', 'default');
    return namespace === 'default' || kubernetes === undefined ? [...own] : [...own, kubernetes];
  }

  /** Ready pods behind a Service port right now, as host:port. */
  endpoints(service: V1Service, port: V1ServicePort): { host: string; port: number }[] {
    const namespace = service.metadata?.namespace ?? 'default';
    if (namespace === 'default' && service.metadata?.name === 'kubernetes') return [this.options.apiServer];
    const result: { host: string; port: number }[] = [];
    for (const pod of this.pods.list(namespace)) {
      if (!selects(service, pod) || !podReady(pod)) continue;
      const target = targetPort(port, pod);
      if (target !== undefined) result.push({ host: pod.status!.podIP!, port: target });
    }
    return result.sort((a, b) => a.host.localeCompare(b.host));
  }

  private sync(): void {
    if (this.stopped) return;
    const wanted = new Map<string, { ip: string; port: number; service: string; namespace: string; portName: string }>();
    for (const service of this.services.list()) {
      const ip = service.spec?.clusterIP;
      if (ip === undefined || ip === '' || ip === 'None') continue;
      for (const port of service.spec?.ports ?? []) {
        if ((port.protocol ?? 'TCP') !== 'TCP') continue;
        const key = `${ip}:${port.port}`;
        wanted.set(key, { ip, port: port.port, service: service.metadata?.name ?? '', namespace: service.metadata?.namespace ?? '', portName: port.name ?? '' });
      }
    }
    for (const [key, listener] of this.listeners) {
      if (!wanted.has(key)) {
        listener.server.close();
        this.listeners.delete(key);
      }
    }
    for (const [key, want] of wanted) {
      if (this.listeners.has(key)) continue;
      const server = createServer((socket) => this.forward(socket, want.namespace, want.service, want.portName, want.port));
      server.on('error', (error) => this.options.log?.(`service proxy: cannot listen on ${key} for ${want.namespace}/${want.service}: ${error.message}`));
      server.listen(want.port, want.ip);
      this.listeners.set(key, { server, key });
    }
  }

  private currentEndpoints(namespace: string, name: string, portName: string, portNumber: number): { host: string; port: number }[] {
    const service = this.services.get(name, namespace);
    const port = service?.spec?.ports?.find((p) => (p.name ?? '') === portName && p.port === portNumber);
    return service && port ? this.endpoints(service, port) : [];
  }

  private forward(client: Socket, namespace: string, name: string, portName: string, portNumber: number, waitedMs = 0): void {
    if (waitedMs === 0) {
      this.sockets.add(client);
      client.once('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
    }
    if (client.destroyed || this.stopped) return;
    const endpoints = this.currentEndpoints(namespace, name, portName, portNumber);
    if (endpoints.length === 0) {
      // A pod the API already shows Ready reaches this proxy's cache a moment later (as it
      // reaches kube-proxy through an EndpointSlice): wait that moment, then reject as
      // kube-proxy rejects connections to a Service without endpoints.
      if (waitedMs < NO_ENDPOINT_WAIT_MS) {
        setTimeout(() => this.forward(client, namespace, name, portName, portNumber, waitedMs + 50), 50);
        return;
      }
      this.options.log?.(`service proxy: ${namespace}/${name}:${portNumber} has no ready endpoint`);
      client.resetAndDestroy();
      return;
    }
    const key = `${namespace}/${name}:${portNumber}`;
    const turn = this.turn.get(key) ?? 0;
    this.turn.set(key, turn + 1);
    const endpoint = endpoints[turn % endpoints.length]!;
    const upstream = createConnection({ host: endpoint.host, port: endpoint.port });
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.on('error', (error) => {
      this.options.log?.(`service proxy: ${key} to ${endpoint.host}:${endpoint.port}: ${error.message}`);
      // A reset cannot follow an end already under way (libuv refuses it and the socket's
      // handle would stay open for good): then a plain destroy.
      if (client.writableEnded) client.destroy();
      else client.resetAndDestroy();
    });
    // pipe() ends each side when the other ends, after what is in flight: a close only
    // ends the other side too (destroying it could drop the last bytes with a reset).
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.end());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Closes every listener and connection and stops watching. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.services.stop();
    this.pods.stop();
    for (const listener of this.listeners.values()) listener.server.close();
    this.listeners.clear();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
