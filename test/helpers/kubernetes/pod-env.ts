/**
 * A container's environment, built as the kubelet builds it: Service variables first, then
 * `envFrom`, then `env` (later ones win), with `$(VAR)` references expanded against what is
 * already defined, and `valueFrom` read from the pod itself (downward API), Secrets and
 * ConfigMaps.
 */
import type { V1ConfigMap, V1Container, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';

/** A container cannot start because of its configuration (the kubelet's CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError';
}

export interface EnvSources {
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** Services whose variables go into the pod: its namespace's, and default/kubernetes. */
  services(namespace: string): readonly V1Service[];
  /** Node allocatable, for resourceFieldRef of a container without limits. */
  allocatable: { cpu: number; memory: number };
}

/** `$(NAME)` → its value when defined, `$$` → `$`, anything else unchanged (k8s.io/kubernetes third_party expansion). */
export function expand(input: string, defined: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input.charAt(i);
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input.charAt(i + 1);
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close === -1) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += defined.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += ch;
    }
  }
  return out;
}

function serviceVariables(services: readonly V1Service[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const service of services) {
    const ip = service.spec?.clusterIP;
    const ports = service.spec?.ports ?? [];
    if (ip === undefined || ip === '' || ip === 'None' || ports.length === 0) continue;
    const name = (service.metadata?.name ?? '').toUpperCase().replaceAll('-', '_');
    const first = ports[0]!;
    env.set(`${name}_SERVICE_HOST`, ip);
    env.set(`${name}_SERVICE_PORT`, String(first.port));
    for (const port of ports) {
      if (port.name !== undefined && port.name !== '') env.set(`${name}_SERVICE_PORT_${port.name.toUpperCase().replaceAll('-', '_')}`, String(port.port));
    }
    // The Docker-links style variables the kubelet also sets.
    const protocol = (first.protocol ?? 'TCP').toLowerCase();
    env.set(`${name}_PORT`, `${protocol}://${ip}:${first.port}`);
    for (const port of ports) {
      const proto = port.protocol ?? 'TCP';
      const prefix = `${name}_PORT_${port.port}_${proto}`;
      env.set(prefix, `${proto.toLowerCase()}://${ip}:${port.port}`);
      env.set(`${prefix}_PROTO`, proto.toLowerCase());
      env.set(`${prefix}_PORT`, String(port.port));
      env.set(`${prefix}_ADDR`, ip);
    }
  }
  return env;
}

/** What the node knows of the pod before the API does: the kubelet fills status fields from it. */
export interface PodRuntime {
  podIP: string;
  hostIP: string;
}

function fieldValue(pod: V1Pod, runtime: PodRuntime, fieldPath: string): string {
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation) {
    const map = labelOrAnnotation[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[labelOrAnnotation[2]!] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return runtime.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return runtime.podIP;
    default:
      throw new ContainerConfigError(`unsupported fieldRef ${fieldPath}`);
  }
}

/** A quantity as a number of base units: "500m" → 0.5, "1Gi" → 2^30. */
export function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(quantity.trim());
  if (!match) throw new ContainerConfigError(`cannot read quantity ${quantity}`);
  const value = Number(match[1]);
  const suffixes: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  const factor = suffixes[match[2]!];
  if (factor === undefined) throw new ContainerConfigError(`cannot read quantity ${quantity}`);
  return value * factor;
}

function resourceValue(container: V1Container, resource: string, divisor: string | undefined, allocatable: EnvSources['allocatable']): string {
  const [kind, name] = resource.split('.') as [string, string | undefined];
  const quantities = kind === 'limits' ? container.resources?.limits : container.resources?.requests;
  const fallback = name === 'cpu' ? allocatable.cpu : name === 'memory' ? allocatable.memory : 0;
  const raw = quantities?.[name ?? ''];
  const value = raw === undefined ? (kind === 'limits' ? fallback : 0) : parseQuantity(raw);
  return String(Math.ceil(value / parseQuantity(divisor ?? '1')));
}

async function required<T>(what: string, optional: boolean | undefined, read: () => Promise<T | undefined>): Promise<T | undefined> {
  const value = await read();
  if (value === undefined && optional !== true) throw new ContainerConfigError(`${what} not found`);
  return value;
}

/** The container's environment as an ordered list of name=value. */
export async function containerEnv(pod: V1Pod, runtime: PodRuntime, container: V1Container, sources: EnvSources): Promise<Map<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env = pod.spec?.enableServiceLinks === false ? serviceVariables(sources.services(namespace).filter((s) => s.metadata?.name === 'kubernetes' && s.metadata.namespace === 'default')) : serviceVariables(sources.services(namespace));

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let data: Record<string, string> = {};
    if (from.configMapRef) {
      const ref = from.configMapRef;
      data = (await required(`configmap "${ref.name}"`, ref.optional, () => sources.configMap(namespace, ref.name ?? '')))?.data ?? {};
    } else if (from.secretRef) {
      const ref = from.secretRef;
      const secret = await required(`secret "${ref.name}"`, ref.optional, () => sources.secret(namespace, ref.name ?? ''));
      data = Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    }
    for (const [key, value] of Object.entries(data)) env.set(prefix + key, value);
  }

  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from === undefined) {
      env.set(variable.name, expand(variable.value ?? '', env));
    } else if (from.fieldRef) {
      env.set(variable.name, fieldValue(pod, runtime, from.fieldRef.fieldPath));
    } else if (from.resourceFieldRef) {
      const ref = from.resourceFieldRef;
      const target = ref.containerName === undefined || ref.containerName === '' ? container : (pod.spec?.containers.find((c) => c.name === ref.containerName) ?? container);
      env.set(variable.name, resourceValue(target, ref.resource, ref.divisor, sources.allocatable));
    } else if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const map = await required(`configmap "${ref.name}"`, ref.optional, () => sources.configMap(namespace, ref.name ?? ''));
      const value = map?.data?.[ref.key];
      if (value === undefined && map !== undefined && ref.optional !== true) throw new ContainerConfigError(`couldn't find key ${ref.key} in ConfigMap ${namespace}/${ref.name}`);
      if (value !== undefined) env.set(variable.name, value);
    } else if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      const secret = await required(`secret "${ref.name}"`, ref.optional, () => sources.secret(namespace, ref.name ?? ''));
      const value = secret?.data?.[ref.key];
      if (value === undefined && secret !== undefined && ref.optional !== true) throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}`);
      if (value !== undefined) env.set(variable.name, Buffer.from(value, 'base64').toString('utf8'));
    }
  }
  return env;
}
