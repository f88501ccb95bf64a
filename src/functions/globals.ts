/**
 * Names a travelling function may use without capturing anything: the ECMAScript globals
 * and the web/Node globals every worker thread and worker process has.
 */
export const PORTABLE_GLOBALS: ReadonlySet<string> = new Set([
  // ECMAScript
  'globalThis', 'Infinity', 'NaN', 'undefined', 'isFinite', 'isNaN', 'parseFloat', 'parseInt',
  'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape',
  'AggregateError', 'Array', 'ArrayBuffer', 'Atomics', 'BigInt', 'BigInt64Array', 'BigUint64Array',
  'Boolean', 'DataView', 'Date', 'Error', 'EvalError', 'FinalizationRegistry', 'Float32Array',
  'Float64Array', 'Function', 'Int8Array', 'Int16Array', 'Int32Array', 'Intl', 'Iterator', 'JSON',
  'Map', 'Math', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'Reflect',
  'RegExp', 'Set', 'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError',
  'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'URIError', 'WeakMap', 'WeakRef',
  'WeakSet',
  // Web platform and Node, present in worker threads and worker processes alike
  'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate',
  'clearImmediate', 'queueMicrotask', 'structuredClone', 'TextEncoder', 'TextDecoder', 'URL',
  'URLSearchParams', 'AbortController', 'AbortSignal', 'atob', 'btoa', 'performance', 'crypto',
  'fetch', 'Headers', 'Request', 'Response', 'FormData', 'Blob', 'Event', 'EventTarget',
  'DOMException', 'WebAssembly', 'Buffer', 'process', 'MessageChannel', 'MessagePort',
  'BroadcastChannel', 'CompressionStream', 'DecompressionStream', 'ReadableStream',
  'WritableStream', 'TransformStream',
]);
