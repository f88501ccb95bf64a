/**
 * A pod's volumes as directories under the pod's own directory, and the bind mounts that
 * show them to a container at their mountPath: projected (the service-account token,
 * kube-root-ca.crt and the namespace, which admission adds to every pod), secret, configMap,
 * downwardAPI, emptyDir and hostPath.
 *
 * A container sees its mounts through a private mount namespace (`unshare --mount`), so that
 * /var/run/secrets/kubernetes.io/serviceaccount holds each pod's own token as on a real
 * node. That needs root; without it, or without unshare, nothing is mounted and the agent
 * says so in a FailedMount event.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { V1ConfigMap, V1Container, V1DownwardAPIVolumeFile, V1KeyToPath, V1Pod, V1Secret, V1Volume } from '@kubernetes/client-node';
import { ContainerConfigError } from './pod-env.js';

export interface VolumeSources {
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** A token from the TokenRequest API bound to this pod. */
  token(pod: V1Pod, serviceAccount: string, audience: string | undefined, expirationSeconds: number | undefined): Promise<string>;
}

/** Whether containers can get a private mount namespace here: root, with unshare and mount. */
export function canMountNamespaces(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function writeFile(dir: string, relative: string, content: string | Buffer, mode: number | undefined): void {
  const file = path.join(dir, relative);
  if (!file.startsWith(dir + path.sep)) throw new ContainerConfigError(`volume path ${relative} leaves its volume`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content, { mode: mode ?? 0o644 });
}

function writeKeys(dir: string, data: Record<string, string | Buffer>, items: readonly V1KeyToPath[] | undefined, defaultMode: number | undefined, what: string, optional: boolean | undefined): void {
  if (items === undefined || items.length === 0) {
    for (const [key, value] of Object.entries(data)) writeFile(dir, key, value, defaultMode);
    return;
  }
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional === true) continue;
      throw new ContainerConfigError(`configmap or secret key ${item.key} of ${what} not found`);
    }
    writeFile(dir, item.path, value, item.mode ?? defaultMode);
  }
}

function decodeSecret(secret: V1Secret | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
}

function downwardValue(pod: V1Pod, file: V1DownwardAPIVolumeFile): string {
  const fieldPath = file.fieldRef?.fieldPath;
  if (fieldPath === 'metadata.labels' || fieldPath === 'metadata.annotations') {
    const map = (fieldPath === 'metadata.labels' ? pod.metadata?.labels : pod.metadata?.annotations) ?? {};
    return Object.keys(map)
      .sort()
      .map((k) => `${k}=${JSON.stringify(map[k])}`)
      .join('\n');
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    default:
      throw new ContainerConfigError(`downwardAPI volume file ${file.path}: unsupported ${fieldPath ?? 'resourceFieldRef'}`);
  }
}

/** Writes one volume's files under `dir`. Throws ContainerConfigError for what cannot be provided. */
async function materialize(pod: V1Pod, volume: V1Volume, dir: string, sources: VolumeSources): Promise<string> {
  const namespace = pod.metadata?.namespace ?? 'default';
  mkdirSync(dir, { recursive: true });
  if (volume.emptyDir) return dir;
  if (volume.hostPath) return volume.hostPath.path;
  if (volume.configMap) {
    const ref = volume.configMap;
    const map = await sources.configMap(namespace, ref.name ?? '');
    if (map === undefined && ref.optional !== true) throw new ContainerConfigError(`configmap "${ref.name}" not found`);
    writeKeys(dir, { ...map?.data, ...Object.fromEntries(Object.entries(map?.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])) }, ref.items, ref.defaultMode, `configmap ${ref.name}`, ref.optional);
    return dir;
  }
  if (volume.secret) {
    const ref = volume.secret;
    const secret = await sources.secret(namespace, ref.secretName ?? '');
    if (secret === undefined && ref.optional !== true) throw new ContainerConfigError(`secret "${ref.secretName}" not found`);
    writeKeys(dir, decodeSecret(secret), ref.items, ref.defaultMode, `secret ${ref.secretName}`, ref.optional);
    return dir;
  }
  if (volume.downwardAPI) {
    for (const item of volume.downwardAPI.items ?? []) writeFile(dir, item.path, downwardValue(pod, item), item.mode ?? volume.downwardAPI.defaultMode);
    return dir;
  }
  if (volume.projected) {
    const mode = volume.projected.defaultMode;
    for (const source of volume.projected.sources ?? []) {
      if (source.serviceAccountToken) {
        const t = source.serviceAccountToken;
        const token = await sources.token(pod, pod.spec?.serviceAccountName ?? 'default', t.audience, t.expirationSeconds);
        writeFile(dir, t.path, token, mode);
      } else if (source.configMap) {
        const ref = source.configMap;
        const map = await sources.configMap(namespace, ref.name ?? '');
        if (map === undefined && ref.optional !== true) throw new ContainerConfigError(`configmap "${ref.name}" not found`);
        writeKeys(dir, map?.data ?? {}, ref.items, mode, `configmap ${ref.name}`, ref.optional);
      } else if (source.secret) {
        const ref = source.secret;
        const secret = await sources.secret(namespace, ref.name ?? '');
        if (secret === undefined && ref.optional !== true) throw new ContainerConfigError(`secret "${ref.name}" not found`);
        writeKeys(dir, decodeSecret(secret), ref.items, mode, `secret ${ref.name}`, ref.optional);
      } else if (source.downwardAPI) {
        for (const item of source.downwardAPI.items ?? []) writeFile(dir, item.path, downwardValue(pod, item), item.mode ?? mode);
      } else {
        throw new ContainerConfigError(`projected volume ${volume.name}: unsupported source ${Object.keys(source).join(',')}`);
      }
    }
    return dir;
  }
  throw new ContainerConfigError(`volume ${volume.name}: unsupported type ${Object.keys(volume).filter((k) => k !== 'name').join(',')}`);
}

/** Writes every volume of the pod under `podDir`; returns each volume's directory by name. */
export async function materializeVolumes(pod: V1Pod, podDir: string, sources: VolumeSources): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) result.set(volume.name, await materialize(pod, volume, path.join(podDir, 'volumes', volume.name), sources));
  return result;
}

/** The container's mounts, with subPath resolved. */
export function containerMounts(container: V1Container, volumes: ReadonlyMap<string, string>, pod: V1Pod): Mount[] {
  return (container.volumeMounts ?? []).map((mount) => {
    const source = volumes.get(mount.name);
    if (source === undefined) throw new ContainerConfigError(`volumeMount ${mount.name} names no volume of the pod`);
    const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
    const alwaysReadOnly = volume?.projected !== undefined || volume?.secret !== undefined || volume?.configMap !== undefined || volume?.downwardAPI !== undefined;
    return { source: mount.subPath ? path.join(source, mount.subPath) : source, target: mount.mountPath, readOnly: alwaysReadOnly || mount.readOnly === true };
  });
}

/**
 * Makes the mount points that do not exist yet on the host: a bind mount needs one. They are
 * left in place afterwards, empty: removing a directory that is a mount point in another
 * pod's namespace would detach that pod's mount, and pods of other clusters may be using it.
 */
export function prepareMountPoints(mounts: readonly Mount[]): void {
  for (const mount of mounts) {
    if (existsSync(mount.target)) continue;
    mkdirSync(path.dirname(mount.target), { recursive: true });
    if (existsSync(mount.source) && !statSync(mount.source).isDirectory()) writeFileSync(mount.target, '', { flag: 'a' });
    else mkdirSync(mount.target, { recursive: true });
  }
}

/**
 * The argv that runs `argv` in a new private mount namespace after bind-mounting `mounts`.
 * unshare and sh exec in turn, so the pid the agent holds is the container's own.
 */
export function inMountNamespace(argv: readonly string[], mounts: readonly Mount[]): string[] {
  const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  const steps = mounts.flatMap((m) => [`mount --bind ${quote(m.source)} ${quote(m.target)}`, ...(m.readOnly ? [`mount -o remount,bind,ro ${quote(m.target)}`] : [])]);
  return ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', `set -e; ${steps.join('; ')}; exec "$@"`, 'container', ...argv];
}
