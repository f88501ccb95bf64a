/**
 * Errors as the Lambda API returns them: an HTTP status, an `x-amzn-ErrorType` header naming the
 * error, and a JSON body with `Type` ("User" or "Service") and `message`, plus any members the
 * error's shape has (TooManyRequestsException's `Reason`). The AWS SDK's REST-JSON
 * deserializer reads the name from that header and the members from the body.
 */
export class LambdaApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Readonly<Record<string, string>> = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = type;
  }

  body(): string {
    const fault = this.status >= 500 ? 'Service' : 'User';
    return JSON.stringify({ Type: fault, message: this.message, ...this.extra });
  }
}

export const notFound = (what: string): LambdaApiError => new LambdaApiError(404, 'ResourceNotFoundException', what);

export const functionNotFound = (arn: string): LambdaApiError => notFound(`Function not found: ${arn}`);

export const invalidParameter = (message: string): LambdaApiError => new LambdaApiError(400, 'InvalidParameterValueException', message);

/** Constraint violations found by the API's model (ranges, patterns, enums) before the service's own checks. */
export function validationError(problems: readonly string[]): LambdaApiError {
  const n = problems.length;
  return new LambdaApiError(400, 'ValidationException', `${n} validation error${n === 1 ? '' : 's'} detected: ${problems.join('; ')}`);
}

export const conflict = (message: string): LambdaApiError => new LambdaApiError(409, 'ResourceConflictException', message);

export const tooLarge = (message: string): LambdaApiError => new LambdaApiError(413, 'RequestEntityTooLargeException', message);

export type ThrottleReason = 'ConcurrentInvocationLimitExceeded' | 'ReservedFunctionConcurrentInvocationLimitExceeded';

export const throttled = (reason: ThrottleReason): LambdaApiError => new LambdaApiError(429, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: reason });
