/**
 * Where scripts/kubernetes/ensure.sh put the control plane's binaries, and whether they are
 * there and built from the inputs checked in now. Tests call `kubernetesMissing` to skip
 * (outside CI) or fail (under CI) when they are not: `npm test` builds them first.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KUBERNETES_SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../scripts/kubernetes');

export const COMPONENTS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'etcd'] as const;
export type Component = (typeof COMPONENTS)[number];

function readSource(name: string): Buffer {
  return readFileSync(path.join(KUBERNETES_SOURCE_DIR, name));
}

/** The pinned release, from the wrapper module's requirement on k8s.io/kubernetes. */
export const KUBERNETES_VERSION: string = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(readSource('go.mod').toString('utf8'))?.[1] ?? 'unknown';

/** The build's cache directory, as ensure.sh names it. */
export const KUBERNETES_CACHE_DIR = path.join(process.env.TESSERA_CACHE ?? path.join(homedir(), '.cache', 'tessera'), 'kubernetes', KUBERNETES_VERSION);

export const KUBERNETES_BIN_DIR = path.join(KUBERNETES_CACHE_DIR, 'bin');

/** The same hash ensure.sh writes to its stamp: sha256 of go.mod, go.sum, main.go and ensure.sh. */
function inputsHash(): string {
  const hash = createHash('sha256');
  for (const name of ['go.mod', 'go.sum', 'main.go', 'ensure.sh']) hash.update(readSource(name));
  return hash.digest('hex');
}

function whyMissing(): string | false {
  const rebuild = 'run scripts/kubernetes/ensure.sh (npm test does)';
  let stamp: string;
  try {
    stamp = readFileSync(path.join(KUBERNETES_CACHE_DIR, 'stamp'), 'utf8').trim();
  } catch {
    return `Kubernetes ${KUBERNETES_VERSION} is not built in ${KUBERNETES_CACHE_DIR}: ${rebuild}`;
  }
  if (stamp !== inputsHash()) return `the Kubernetes build in ${KUBERNETES_CACHE_DIR} is from other inputs than scripts/kubernetes/: ${rebuild}`;
  for (const component of COMPONENTS) {
    try {
      accessSync(path.join(KUBERNETES_BIN_DIR, component), constants.X_OK);
    } catch {
      return `${component} is missing from ${KUBERNETES_BIN_DIR}: ${rebuild}`;
    }
  }
  return false;
}

/** Why the control plane cannot start here, or false when its binaries are in place. */
export const kubernetesMissing: string | false = whyMissing();

/**
 * The `skip` option for a test that needs the control plane: the reason outside CI, and
 * false under CI=true, where the test must run (and fail) rather than skip.
 */
export const skipWithoutKubernetes: string | false = process.env.CI === 'true' ? false : kubernetesMissing;

export function binary(component: Component): string {
  return path.join(KUBERNETES_BIN_DIR, component);
}
