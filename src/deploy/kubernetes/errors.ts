/**
 * A call to the Kubernetes API server that failed: its HTTP status (0 when no answer came),
 * the Status reason the server gave (`Forbidden`, `AlreadyExists`, `Gone`…) and its message.
 */
import { TesseraError } from '../../errors.js';

export class KubernetesApiError extends TesseraError {
  /** HTTP status, or 0 when the server could not be reached or did not answer. */
  readonly status: number;
  /** The Status object's reason, when the server sent one. */
  readonly reason: string | undefined;
  /** What was asked: 'create pods', 'watch pods'… */
  readonly request: string;
  /** From a Retry-After header (429, 503), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(request: string, status: number, message: string, options: { reason?: string | undefined; retryAfterMs?: number | undefined; cause?: unknown } = {}) {
    super(`${request}: ${status === 0 ? '' : `${status} `}${message}`, 'ERR_KUBERNETES_API', options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KubernetesApiError';
    this.status = status;
    this.reason = options.reason;
    this.request = request;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The scheduler of a KubernetesCluster did not become ready: its pod failed to start
 * (`reason`: ImagePullBackOff, CrashLoopBackOff…) or the time ran out. The message carries
 * the pod's events and last log lines; what was created has been deleted.
 */
export class ClusterStartError extends TesseraError {
  readonly reason: string;

  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, 'ERR_CLUSTER_START', options);
    this.name = 'ClusterStartError';
    this.reason = reason;
  }
}
