/**
 * Lambda's documented quotas that shape how Tessera uses it
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
 */

/** A deployment package uploaded directly (Code.ZipFile): 50 MB zipped. */
export const MAX_ZIPPED_BYTES = 52_428_800;
/** The function's code unpacked, layers included: 250 MB. */
export const MAX_UNZIPPED_BYTES = 262_144_000;
/** A synchronous (RequestResponse) invocation's request and response: 6 MB each. */
export const MAX_SYNC_PAYLOAD_BYTES = 6_291_456;
/** An asynchronous (Event) invocation's payload: 1 MB. */
export const MAX_ASYNC_PAYLOAD_BYTES = 1_048_576;
/** A function's timeout: 1 s to 15 min. */
export const MAX_TIMEOUT_SECONDS = 900;
/** A function's memory: 128 MB to 10,240 MB. */
export const MIN_MEMORY_MB = 128;
export const MAX_MEMORY_MB = 10_240;
/** Function names: letters, digits, hyphens and underscores, at most 64. */
export const MAX_FUNCTION_NAME = 64;
