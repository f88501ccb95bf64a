import { TesseraError } from '../errors.js';

/** The store could not be reached (or answered too late); what it held may be gone. */
export class StoreUnavailableError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_STORE_UNAVAILABLE', options);
    this.name = 'StoreUnavailableError';
  }
}
