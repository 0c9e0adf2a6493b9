/**
 * The one error hierarchy of Pitwall. `retriable` says whether trying the same thing again can
 * succeed (a broker hiccup) or never will (a malformed payload); `reason` is a stable,
 * machine-readable code that ends up in dead-letter headers; `context` carries where it happened
 * (topic, partition, offset, vehicle).
 */
export interface ErrorContext {
  topic?: string;
  partition?: number;
  offset?: string;
  vehicleId?: string;
  [key: string]: unknown;
}

export class PitwallError extends Error {
  readonly reason: string;
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(reason: string, message: string, opts: { retriable?: boolean; cause?: unknown; context?: ErrorContext } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.reason = reason;
    this.retriable = opts.retriable ?? false;
    this.context = Object.freeze({ ...(opts.context ?? {}) });
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, reason: this.reason, message: this.message, retriable: this.retriable, context: this.context };
  }
}

/** A configuration value is missing or invalid; the message names the environment variable. */
export class ConfigError extends PitwallError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('config.invalid', `${variable}: ${message}`);
    this.variable = variable;
  }
}

/** Input that can never become a valid record. Never retried: it is dead-lettered with `reason`. */
export class InvalidInputError extends PitwallError {
  constructor(reason: string, message: string, context: ErrorContext = {}) {
    super(reason, message, { retriable: false, context });
  }
}

/** A dependency (broker, registry) failed in a way that may pass. */
export class TransientError extends PitwallError {
  constructor(reason: string, message: string, opts: { cause?: unknown; context?: ErrorContext } = {}) {
    super(reason, message, { ...opts, retriable: true });
  }
}

/** Whether an unknown error is worth retrying. Unknown errors from client libraries are assumed to be. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof PitwallError) return err.retriable;
  if (err && typeof err === 'object' && 'retriable' in err) return Boolean(err.retriable);
  return true;
}
