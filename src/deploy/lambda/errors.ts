/** What can go wrong between Tessera and Lambda, each with a stable code. */
import { TesseraError } from '../../errors.js';

/** A deployment package over Lambda's size limits; names the inputs that weigh most. */
export class LambdaPackageTooLargeError extends TesseraError {
  readonly zippedBytes: number;
  readonly unzippedBytes: number;
  /** The largest inputs (source files or bundles) and their bytes in the package, largest first. */
  readonly biggest: readonly { readonly name: string; readonly bytes: number }[];

  constructor(message: string, zippedBytes: number, unzippedBytes: number, biggest: readonly { readonly name: string; readonly bytes: number }[]) {
    super(message, 'ERR_LAMBDA_PACKAGE_TOO_LARGE');
    this.name = 'LambdaPackageTooLargeError';
    this.zippedBytes = zippedBytes;
    this.unzippedBytes = unzippedBytes;
    this.biggest = biggest;
  }
}

/** A payload over the invocation's limit (6 MB synchronous, 1 MB asynchronous). */
export class LambdaPayloadTooLargeError extends TesseraError {
  readonly bytes: number;
  readonly limit: number;

  constructor(message: string, bytes: number, limit: number) {
    super(message, 'ERR_LAMBDA_PAYLOAD_TOO_LARGE');
    this.name = 'LambdaPayloadTooLargeError';
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Lambda kept answering 429 (TooManyRequestsException) after every retry. */
export class LambdaThrottledError extends TesseraError {
  readonly attempts: number;

  constructor(message: string, attempts: number, options?: ErrorOptions) {
    super(message, 'ERR_LAMBDA_THROTTLED', options);
    this.name = 'LambdaThrottledError';
    this.attempts = attempts;
  }
}

/** An invocation ended in a function error (`X-Amz-Function-Error`): a crash, a timeout, an exception. */
export class LambdaFunctionError extends TesseraError {
  /** Lambda's errorType, such as `Sandbox.Timedout` or `Runtime.ExitError`. */
  readonly errorType: string;

  constructor(message: string, errorType: string) {
    super(message, 'ERR_LAMBDA_FUNCTION');
    this.name = 'LambdaFunctionError';
    this.errorType = errorType;
  }
}
