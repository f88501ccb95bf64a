/**
 * Lambda's documented quotas, as the real service enforces them (bytes, seconds, MB).
 * The messages that quote them are the service's own wording.
 */

/** Synchronous invocation request payload (RequestResponse, DryRun): 6 MB. */
export const SYNC_REQUEST_LIMIT = 6_291_456;
/**
 * Synchronous invocation response payload. The Runtime API allows 100 bytes over 6 MB, and the
 * invoke's error quotes that figure.
 */
export const SYNC_RESPONSE_LIMIT = 6_291_556;
/** Asynchronous invocation (Event) payload: 1 MB. */
export const ASYNC_REQUEST_LIMIT = 1_048_576;
/** A deployment package uploaded directly (Code.ZipFile), zipped. */
export const ZIPPED_CODE_LIMIT = 52_428_800;
/** A deployment package, unzipped (with layers, which this service does not have). */
export const UNZIPPED_CODE_LIMIT = 262_144_000;
/** The whole CreateFunction request: the base64 of a 50 MB package and the rest of its JSON. */
export const CREATE_FUNCTION_REQUEST_LIMIT = 70_167_211;

export const TIMEOUT_MIN_S = 1;
export const TIMEOUT_MAX_S = 900;
export const TIMEOUT_DEFAULT_S = 3;
export const MEMORY_MIN_MB = 128;
export const MEMORY_MAX_MB = 10_240;
export const MEMORY_DEFAULT_MB = 128;

/** An on-demand environment's init phase is capped at 10 s. */
export const INIT_TIMEOUT_MS = 10_000;

/** Event invoke configuration bounds and defaults. */
export const MAX_RETRY_ATTEMPTS_MAX = 2;
export const MAX_EVENT_AGE_MIN_S = 60;
export const MAX_EVENT_AGE_MAX_S = 21_600;

/** Runtimes whose environments this service can run (Node's, through AWS's Node runtime interface client). */
export const RUNTIMES = ['nodejs20.x', 'nodejs22.x', 'nodejs24.x'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export const ARCHITECTURES = ['x86_64', 'arm64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];
