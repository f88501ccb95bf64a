/**
 * Every error Tessera raises is a `TesseraError` with a stable `code`. The brand lives on
 * a registered symbol so that `instanceof` holds even when two copies of the package meet
 * (a user's bundle and a worker's, say).
 */
const kBrand = Symbol.for('tessera.error');

export class TesseraError extends Error {
  readonly code: string;

  constructor(message: string, code = 'ERR_TESSERA', options?: ErrorOptions) {
    super(message, options);
    this.name = 'TesseraError';
    this.code = code;
  }

  get [kBrand](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses keep the ordinary prototype check; the base class accepts any branded error.
    if (this === TesseraError) {
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Options or arguments given at the door were wrong. */
export class InvalidArgumentError extends TesseraError {
  constructor(message: string) {
    super(message, 'ERR_INVALID_ARGUMENT');
    this.name = 'InvalidArgumentError';
  }
}

/** A task refers to a key that is neither in the graph nor already computed. */
export class MissingKeyError extends TesseraError {
  readonly key: string;
  readonly missing: string;

  constructor(key: string, missing: string) {
    super(
      key === ''
        ? `key '${missing}' was requested but is not in the graph`
        : `task '${key}' refers to key '${missing}', which is not in the graph`,
      'ERR_MISSING_KEY',
    );
    this.name = 'MissingKeyError';
    this.key = key;
    this.missing = missing;
  }
}

/** The graph has a cycle; `keys` lists the keys on it, in order. */
export class CycleError extends TesseraError {
  readonly keys: readonly string[];

  constructor(keys: readonly string[]) {
    super(`the graph has a cycle: ${[...keys, keys[0]].join(' -> ')}`, 'ERR_GRAPH_CYCLE');
    this.name = 'CycleError';
    this.keys = keys;
  }
}

/** A function refers to a variable from its enclosing scope, which cannot travel with it. */
export class CapturedVariableError extends TesseraError {
  readonly functionName: string;
  readonly variables: readonly string[];

  constructor(functionName: string, variables: readonly string[]) {
    const list = variables.map((v) => `'${v}'`).join(', ');
    const fn = functionName === '(anonymous)' ? 'fn' : functionName;
    const scope = `{ ${variables.join(', ')} }`;
    super(
      `function ${functionName} uses ${list} from its enclosing scope; a function that runs on ` +
        `another thread or machine travels as source and cannot take its surroundings along. ` +
        `Ship ${variables.length === 1 ? 'it' : 'them'} with the function: delayed(${fn}, { scope: ${scope} }), ` +
        `client.submitWith({ scope: ${scope} }, ${fn}, …) or scoped(${fn}, ${scope}) (the values are copied now); ` +
        `or pass ${variables.length === 1 ? 'it as an argument' : 'them as arguments'}; or, for a function that needs imports, ` +
        `export it from a module of its own (not the script you run) and register it there with fromModule(import.meta.url, { ${fn} }).`,
      'ERR_CAPTURED_VARIABLE',
    );
    this.name = 'CapturedVariableError';
    this.functionName = functionName;
    this.variables = variables;
  }
}

/** A function that cannot be shipped at all: native, bound, or a class. */
export class FunctionNotPortableError extends TesseraError {
  readonly functionName: string;

  constructor(functionName: string, reason: string) {
    super(`function ${functionName} cannot travel to another thread or machine: ${reason}`, 'ERR_FUNCTION_NOT_PORTABLE');
    this.name = 'FunctionNotPortableError';
    this.functionName = functionName;
  }
}

/** A value (a task's result or a literal) that cannot be copied to another thread or process. */
export class UnserializableError extends TesseraError {
  readonly key: string;
  readonly path: string;
  readonly reason: string;

  constructor(key: string, path: string, reason: string) {
    super(
      `the result of task '${key}' cannot travel between threads or processes: ${path === '' ? 'the value' : `the value at ${path}`} ${reason}`,
      'ERR_UNSERIALIZABLE',
    );
    this.name = 'UnserializableError';
    this.key = key;
    this.path = path;
    this.reason = reason;
  }
}

/** The error a task raised, carried back with its key and the stack from where it ran. */
export class TaskError extends TesseraError {
  readonly key: string;
  readonly remoteName: string;
  readonly remoteMessage: string;
  readonly remoteStack: string;

  constructor(key: string, remote: { name: string; message: string; stack: string }, options?: ErrorOptions) {
    super(`task '${key}' failed: ${remote.name}: ${remote.message}`, 'ERR_TASK_FAILED', options);
    this.name = 'TaskError';
    this.key = key;
    this.remoteName = remote.name;
    this.remoteMessage = remote.message;
    this.remoteStack = remote.stack;
    this.stack = `${this.name}: ${this.message}\n    --- remote stack ---\n${remote.stack}`;
  }
}

/** A computation was cancelled through its AbortSignal or by the user. */
export class CancelledError extends TesseraError {
  constructor(message = 'the computation was cancelled', options?: ErrorOptions) {
    super(message, 'ERR_CANCELLED', options);
    this.name = 'CancelledError';
  }
}

/** A worker (thread or process) died while it held or ran the task. */
export class WorkerLostError extends TesseraError {
  readonly key: string;

  constructor(key: string, message: string) {
    super(message, 'ERR_WORKER_LOST');
    this.name = 'WorkerLostError';
    this.key = key;
  }
}

/**
 * A resource (scheduler, worker, client, cluster, connection, pool, …) was asked to do
 * something after it began closing.
 */
export class ClosedError extends TesseraError {
  /** What was closed, as in the message: 'the client', 'the cluster'… */
  readonly resource: string;
  readonly state: string;

  constructor(resource: string, state: string, options?: ErrorOptions) {
    super(`${resource} is ${state}`, 'ERR_CLOSED', options);
    this.name = 'ClosedError';
    this.resource = resource;
    this.state = state;
  }
}

/** A call that the resource's current state does not allow (starting a dashboard twice, say). */
export class IllegalStateError extends TesseraError {
  constructor(message: string) {
    super(message, 'ERR_ILLEGAL_STATE');
    this.name = 'IllegalStateError';
  }
}

/**
 * A peer sent a message this side cannot take: malformed, of an unknown kind, or out of
 * turn. The connection that carried it is closed; the process goes on serving others.
 */
export class ProtocolError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_PROTOCOL', options);
    this.name = 'ProtocolError';
  }
}

/** A worker (process, pod, job, function) did not start, or did not register in time. */
export class WorkerStartError extends TesseraError {
  readonly worker: string;

  constructor(worker: string, message: string, options?: ErrorOptions) {
    super(message, 'ERR_WORKER_START', options);
    this.name = 'WorkerStartError';
    this.worker = worker;
  }
}

/** `client.scatter()` could not place its values. */
export class ScatterError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_SCATTER', options);
    this.name = 'ScatterError';
  }
}

/** A state machine found its own bookkeeping inconsistent (`validate()`): a bug in Tessera. */
export class InvariantError extends TesseraError {
  constructor(message: string) {
    super(message, 'ERR_INVARIANT');
    this.name = 'InvariantError';
  }
}

/** Serialise an unknown thrown value into the parts a TaskError carries. */
export function describeError(error: unknown): { name: string; message: string; stack: string } {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack ?? `${error.name}: ${error.message}` };
  }
  const message = typeof error === 'string' ? error : safeString(error);
  return { name: 'NonErrorThrown', message, stack: `thrown value: ${message}` };
}

function safeString(value: unknown): string {
  try {
    // JSON.stringify gives undefined for undefined, functions and symbols.
    const json = JSON.stringify(value) as string | undefined;
    if (json !== undefined) return json;
  } catch {
    // Cycles and bigints; described below.
  }
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'bigint') return `${value}n`;
  return Object.prototype.toString.call(value);
}
