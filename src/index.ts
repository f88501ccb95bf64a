/**
 * Tessera: parallel and distributed computing for TypeScript.
 *
 * ```ts
 * import { delayed, compute } from 'tessera';
 *
 * const inc = delayed((x: number) => x + 1);
 * const add = delayed((a: number, b: number) => a + b);
 * const total = add(inc(1), inc(2));   // nothing runs yet
 * await total.compute();               // 5, on all local cores
 * ```
 */
export { delayed, compute, computeWith, toGraph, Delayed } from './graph/delayed.js';
export type { Lazy, DelayedOptions, Computed } from './graph/delayed.js';
export type { ComputeOptions, Progress, RemoteRunner } from './graph/runner.js';
export { task, ref, Task, Ref } from './graph/task.js';
export type { Refable } from './graph/task.js';
export type { Graph } from './graph/graph.js';
export { compile } from './graph/plan.js';
export type { Plan, PlanOptions } from './graph/plan.js';
export { fromModule } from './functions/from-module.js';
export { builtins } from './functions/builtins.js';
export { scoped } from './functions/scope.js';
export type { BuiltinName } from './functions/builtins.js';
export type { FnRef } from './functions/fn-ref.js';
export { get } from './local/get.js';
export type { GetOptions } from './local/get.js';
export type { LocalOptions } from './local/options.js';
export { shutdownThreads } from './local/pool.js';
export {
  TesseraError,
  InvalidArgumentError,
  MissingKeyError,
  CycleError,
  CapturedVariableError,
  FunctionNotPortableError,
  UnserializableError,
  TaskError,
  CancelledError,
  WorkerLostError,
  ClosedError,
  IllegalStateError,
  ProtocolError,
  WorkerStartError,
  ScatterError,
  InvariantError,
} from './errors.js';
export {
  AuthenticationError,
  ConnectError,
  ConnectionClosedError,
  FrameTooLargeError,
  HandshakeError,
  InvalidAddressError,
  ListenError,
  MalformedFrameError,
  ProtocolVersionError,
  UnencodableMessageError,
} from './comm/errors.js';
export { BundleError } from './functions/bundle.js';
export { createLog } from './log.js';
export type { Log, LogSink, LogLevel } from './log.js';
export { Client } from './client/client.js';
export type { ClientOptions, SubmitOptions } from './client/client.js';
export { Future, progress } from './client/future.js';
export { FutureList } from './client/future-list.js';
export type { FutureStatus } from './client/future.js';
export { LocalCluster } from './deploy/local/cluster.js';
export type { LocalClusterOptions } from './deploy/local/cluster.js';
export { Scheduler } from './process/scheduler.js';
export type { SchedulerOptions } from './process/scheduler.js';
export { SchedulerServer } from './scheduler/server.js';
export type { SchedulerServerOptions } from './scheduler/server.js';
export type { ResourceState } from './lifecycle.js';
export type { SchedulerPlugin, WorkerInfo, FinishedTask } from './scheduler/plugin.js';
export type { SchedulerStateOptions } from './scheduler/state.js';
export { Worker } from './worker/worker.js';
export type { WorkerOptions } from './worker/worker.js';
export type { ClusterBackend } from './adaptive/backend.js';
export { Adaptive } from './adaptive/loop.js';
export type { AdaptiveTarget, ClusterView } from './adaptive/loop.js';
export type { ScalingBackend, ScalingDecision, ScalingHistory, ScalingSample, ScalingSideSample } from './protocol/scaling.js';
export type { StoryEntry } from './protocol/story.js';
export type { AdaptiveInput, AdaptiveDecision } from './adaptive/policy.js';
export { SlurmCluster } from './deploy/slurm/cluster.js';
export type { SlurmClusterOptions } from './deploy/slurm/cluster.js';
export { SlurmBackend } from './deploy/slurm/backend.js';
export type { SlurmBackendOptions, SlurmJob, SlurmJobFailure } from './deploy/slurm/backend.js';
export type { SlurmJobOptions } from './deploy/slurm/options.js';
export { SlurmCommandError } from './deploy/slurm/errors.js';
export { leaveAtLifetime } from './worker/lifetime.js';
export type { LifetimeOptions, Lifetime } from './worker/lifetime.js';
export { KubernetesCluster, KubernetesBackend, KubernetesApiError, ClusterStartError } from './deploy/kubernetes/index.js';
export type { KubernetesClusterOptions, KubernetesBackendOptions, KubernetesWorkerOptions, WorkerPodFailure, PodTemplate } from './deploy/kubernetes/index.js';
export { SimulatedCluster } from './deploy/simulated/cluster.js';
export type { SimulatedTask, SimulationOptions, SimulationReport } from './deploy/simulated/cluster.js';
export { ProgressBar } from './client/progress-bar.js';
export type { ProgressBarOptions } from './client/progress-bar.js';
export { startDashboard } from './dashboard/server.js';
export type { Dashboard, DashboardOptions } from './dashboard/server.js';
export type { DashboardSource, TaskStreamEntry } from './dashboard/source.js';
export { MemoryStore, RedisStore, openStore, StoreUnavailableError, encodeValue, decodeValue, putValues, getValues } from './store/index.js';
export type { ResultStore, StoreItem, PutOptions, PutOutcome, MemoryStoreOptions, RedisStoreOptions } from './store/index.js';
export { lambdaBackend, LambdaBackend } from './deploy/lambda/backend.js';
export type { LambdaBackendOptions, LambdaBackendStats } from './deploy/lambda/backend.js';
export { lambdaDirectBackend, LambdaDirectBackend } from './deploy/lambda/direct.js';
export type { LambdaDirectOptions, LambdaDirectStats } from './deploy/lambda/direct.js';
export { buildWorkerPackage } from './deploy/lambda/package.js';
export type { PackageOptions, WorkerPackage } from './deploy/lambda/package.js';
export { LambdaFunctionError, LambdaPackageTooLargeError, LambdaPayloadTooLargeError, LambdaThrottledError } from './deploy/lambda/errors.js';
