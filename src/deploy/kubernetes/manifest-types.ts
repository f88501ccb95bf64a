/**
 * Manifests as plain objects. client-node types request bodies as its model classes but
 * sends any object of the right shape; these types keep the classes' fields checked
 * without pretending an instance, and let users write a pod template as a literal.
 */
import type { V1EnvVar, V1OwnerReference, V1Pod, V1ResourceRequirements, V1Toleration } from '@kubernetes/client-node';

export type Plain<T> = T extends Date | string | number | boolean | null | undefined
  ? T
  : T extends readonly (infer U)[]
    ? Plain<U>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;

/** Every field optional, at any depth: what a template lays over a full manifest. */
export type DeepPartial<T> = T extends Date | string | number | boolean | null | undefined
  ? T
  : T extends readonly (infer U)[]
    ? DeepPartial<U>[]
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> | null }
      : T;

export type PodManifest = Plain<V1Pod>;
/** A pod manifest, any part of it, laid over the one Tessera builds (see merge.ts). */
export type PodTemplate = DeepPartial<PodManifest>;
export type Toleration = Plain<V1Toleration>;
export type EnvVar = Plain<V1EnvVar>;
export type ResourceRequirements = Plain<V1ResourceRequirements>;
export type OwnerReference = Plain<V1OwnerReference>;

/** Passes a plain object where client-node's signature names a model class. */
export function asModel<T>(value: Plain<T> | DeepPartial<Plain<T>>): T {
  return value as T;
}
