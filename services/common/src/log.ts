/** Structured JSON logs, one object per line, with a level from config. */
import type { LogLevel } from './config.js';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(opts: { service: string; level: LogLevel; write?: (line: string) => void; fields?: Record<string, unknown> }): Logger {
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const min = RANK[opts.level];
  const base = { service: opts.service, ...opts.fields };
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, ...base, msg, ...serialize(fields) }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, write, fields: { ...opts.fields, ...fields } }),
  };
}

function serialize(fields?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!fields) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? serializeError(v) : v;
  return out;
}

/** Deepest `cause` (and AggregateError member) followed: a chain longer than this is cut, and says so. */
const MAX_CAUSE_DEPTH = 5;

/**
 * An error as a plain object: name, message, stack, its own fields (kafkajs's `type`, `retriable`,
 * Pitwall's `reason` and `context`, Node's `code`), its `cause` chain and an AggregateError's
 * `errors`. `stack` and `cause` are not enumerable, so spreading an error drops exactly the two
 * things needed to find a fault.
 */
export function serializeError(err: unknown, depth = 0, seen: Set<unknown> = new Set()): unknown {
  if (!(err instanceof Error)) return err;
  if (seen.has(err)) return { name: err.name, message: err.message, circular: true };
  seen.add(err);
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const [k, v] of Object.entries(err)) {
    if (k !== 'cause' && k !== 'errors') out[k] = v instanceof Error ? serializeError(v, depth + 1, seen) : v;
  }
  if (err.stack !== undefined) out.stack = err.stack;
  const next = (e: unknown): unknown => (depth + 1 >= MAX_CAUSE_DEPTH ? { truncated: `more than ${MAX_CAUSE_DEPTH} causes deep` } : serializeError(e, depth + 1, seen));
  if (err.cause !== undefined) out.cause = next(err.cause);
  const errors = (err as { errors?: unknown }).errors; // AggregateError's, and kafkajs's KafkaJSAggregateError
  if (Array.isArray(errors)) out.errors = errors.map(next);
  return out;
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ service: 'test', level: 'error', write: () => {} });
