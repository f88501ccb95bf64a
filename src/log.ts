/**
 * What Tessera tells its operators: structured log records with levels, on pino. By
 * default one readable line each on stderr (`tessera scheduler: lost worker … reason=…`);
 * TESSERA_LOG_FORMAT=json writes pino's JSON lines instead, and TESSERA_LOG_LEVEL (debug,
 * info, warn, error, silent; default info) sets how much.
 *
 * Every `log` option of Tessera takes one of: a pino logger (records go to it, with a
 * `component` field), a function (it gets each readable line, led by its component), or
 * false (silence).
 *
 * ```ts
 * const log = createLog('scheduler', options.log);
 * log.warn('lost worker', { worker: id, reason: error.message });
 * ```
 */
import { pino, type Logger } from 'pino';
import { InvalidArgumentError } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where records go: a pino logger, a function taking readable lines, or false for none. */
export type LogSink = Logger | ((line: string) => void) | false;

export type LogFields = Readonly<Record<string, unknown>>;

export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The log of one component ('scheduler', 'worker', 'cluster', …) writing to `sink`. */
export function createLog(component: string, sink?: LogSink): Log {
  if (sink === false) return SILENT;
  if (sink === undefined) return fromPino(defaultLogger().child({ component }));
  if (typeof sink === 'function') {
    if (isPino(sink)) return fromPino(sink.child({ component }));
    return fromLines(component, sink);
  }
  if (isPino(sink)) return fromPino(sink.child({ component }));
  throw new InvalidArgumentError('options.log must be a pino logger, a function taking lines, or false');
}

/** Checks a `log` option at the door; `where` names the call. */
export function checkLogSink(sink: unknown, where: string): void {
  if (sink === undefined || sink === false || typeof sink === 'function' || isPino(sink)) return;
  throw new InvalidArgumentError(`${where}: options.log must be a pino logger, a function taking lines, or false`);
}

const SILENT: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function isPino(value: unknown): value is Logger {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as Partial<Logger>).child === 'function' && typeof (value as Partial<Logger>).levelVal === 'number';
}

function fromPino(logger: Logger): Log {
  const at = (level: LogLevel) => (message: string, fields?: LogFields): void => {
    if (fields === undefined) logger[level](message);
    else logger[level](fields, message);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * A function sink gets readable lines at info and above, each led by its component
 * (`adaptive: scale up to 20 reason=…`); warnings and errors say so.
 */
function fromLines(component: string, write: (line: string) => void): Log {
  const at = (level: LogLevel) => (message: string, fields?: LogFields): void => {
    if (level === 'debug') return;
    write(`${component}: ${readable(level, message, fields)}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function readable(level: LogLevel, message: string, fields: LogFields | undefined): string {
  const prefix = level === 'warn' ? 'warning: ' : level === 'error' ? 'error: ' : '';
  let tail = '';
  if (fields !== undefined) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v);
      tail += ` ${k}=${/\s/.test(text) ? JSON.stringify(text) : text}`;
    }
  }
  return `${prefix}${message}${tail}`;
}

let shared: Logger | undefined;

/** The process's logger: readable lines on stderr, or JSON with TESSERA_LOG_FORMAT=json. */
export function defaultLogger(): Logger {
  if (shared !== undefined) return shared;
  const level = process.env['TESSERA_LOG_LEVEL'] ?? 'info';
  if (![...LEVELS, 'silent', 'trace', 'fatal'].includes(level)) throw new InvalidArgumentError(`TESSERA_LOG_LEVEL must be one of debug, info, warn, error, silent; got '${level}'`);
  const json = process.env['TESSERA_LOG_FORMAT'] === 'json';
  shared = pino({ level, base: { pid: process.pid } }, json ? pino.destination({ fd: 2, sync: true }) : { write: writeReadable });
  return shared;
}

const LEVEL_NAMES: Readonly<Record<number, LogLevel>> = { 10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'error' };
const META = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component']);

/** pino hands each record over as a JSON line; this prints it as people read it. */
function writeReadable(record: string): void {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(record) as Record<string, unknown>;
  } catch {
    process.stderr.write(record);
    return;
  }
  const level = LEVEL_NAMES[typeof parsed['level'] === 'number' ? parsed['level'] : 30] ?? 'info';
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed)) if (!META.has(k)) fields[k] = v;
  const component = typeof parsed['component'] === 'string' ? parsed['component'] : 'tessera';
  const message = typeof parsed['msg'] === 'string' ? parsed['msg'] : '';
  process.stderr.write(`tessera ${component}: ${readable(level, message, Object.keys(fields).length === 0 ? undefined : fields)}\n`);
}
