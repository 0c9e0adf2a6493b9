/**
 * Truthful readiness. A service reports facts; the tracker turns them into the named checks that
 * /readyz lists when they fail (startHealthServer(port, readiness.failing)):
 *
 *   conditions  set(name, ok, why): a broker link ('kafka', 'mqtt'), a subscription granted on the
 *               current connection ('mqtt.subscription'), a consumer in its group ('consumer'),
 *               the service itself started and not closing.
 *   progress    fails while some source reports pending work and nothing progressed for stallMs
 *               (PROGRESS_STALL_MS).
 *   batches     fails while a batch that failed with a non-retriable error has not been followed by
 *               a good batch of its partition. Each such failure is logged as an error with the
 *               batch's extent and counted; the fatalRepeatLimit-th (FATAL_REPEAT_LIMIT) failure of
 *               the same batch calls onFatal (main exits 1, so the supervisor restarts the process).
 *               Failures while a broker link is down are outage effects and do not count.
 *   fatal       set once fatal() was called (e.g. a consumer kafkajs will not restart).
 */
import type { Admin, Batch, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Counters, CounterSpecs } from './counters.js';
import type { Logger } from './log.js';
import { isConnectionLostDuringSasl } from './kafka.js';

export interface BatchExtent {
  topic: string;
  partition?: number;
  firstOffset?: string | null;
  lastOffset?: string | null;
  records?: number;
}

export interface ReadinessOptions {
  log: Logger;
  /** PROGRESS_STALL_MS (default 30 s). */
  stallMs?: number;
  /** FATAL_REPEAT_LIMIT (default 10). */
  fatalRepeatLimit?: number;
  /** Called once, on the first fatal(); main.ts exits non-zero. */
  onFatal?: (err: unknown) => void;
  now?: () => number;
  counters?: Counters;
  /** How often pending work is sampled (default 1 s); 0: only when checked (tests). */
  sampleMs?: number;
}

export interface Readiness {
  set(name: string, ok: boolean, why?: string): void;
  /** A source of pending work, polled: a count above 0 means work is waiting. */
  pending(name: string, count: () => number): void;
  progress(): void;
  batchFailed(extent: BatchExtent, err: unknown): void;
  batchDone(extent: Pick<BatchExtent, 'topic' | 'partition'>): void;
  /** Forgets failed batches (after a rebalance they may belong to someone else). */
  resetBatches(): void;
  /** Wraps an eachBatch handler: a throw is batchFailed (and rethrown), a return batchDone. */
  eachBatch<P extends EachBatchPayload>(handler: (payload: P) => Promise<void>): (payload: P) => Promise<void>;
  fatal(why: string, err?: unknown): void;
  // failing and checks are handed around on their own (startHealthServer, exportReadiness): bound
  // functions, typed as properties so that is allowed.
  /** Failing checks, name -> why. */
  failing: () => Record<string, string>;
  /** Every check known so far (conditions set, progress, batches, fatal) -> whether it passes (for metrics). */
  checks: () => Record<string, boolean>;
  ready(): boolean;
  /** The process is shutting down: sampling stops and fatal() is ignored (a consumer may crash while it leaves). */
  stop(): void;
}

export const READINESS_METRICS = Object.freeze({
  batchFailures: 'pitwall_batch_failures_total',
});

/** The tracker's counters, with HELP and labels, for createCounters(READINESS_COUNTERS, registry). */
export const READINESS_COUNTERS: CounterSpecs = Object.freeze({
  [READINESS_METRICS.batchFailures]: {
    help: 'Failed batches and Kafka sends, by reason: permanent (a non-retriable error; the FATAL_REPEAT_LIMIT-th in a row of one batch exits) or transient (an outage).',
    labels: ['reason'],
  },
});

/** Errors that say a broker is unreachable or busy: never a poison batch. */
const OUTAGE_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
]);
const WRAPPERS = new Set(['KafkaJSNonRetriableError', 'KafkaJSNumberOfRetriesExceeded']);

/**
 * Whether retrying the same batch cannot help: a bug (TypeError...), an error marked retriable
 * false (e.g. MESSAGE_TOO_LARGE), or an unknown error without a retriable flag. Outage errors and
 * anything marked retriable are transient; kafkajs wrappers are judged by their cause.
 */
export function isPermanentError(err: unknown): boolean {
  let e = err;
  for (let depth = 0; depth < 8; depth++) {
    if (!e || typeof e !== 'object') return true;
    const x = e as { name?: string; retriable?: unknown; cause?: unknown };
    if (x.name && WRAPPERS.has(x.name)) {
      if (x.name === 'KafkaJSNumberOfRetriesExceeded') return false; // only retriable errors are retried
      if (x.cause) {
        e = x.cause;
        continue;
      }
    }
    if (x.name && OUTAGE_ERRORS.has(x.name)) return false;
    return x.retriable !== true;
  }
  return true;
}

export function batchExtent(batch: Pick<Batch, 'topic' | 'partition' | 'messages'> & Partial<Pick<Batch, 'firstOffset' | 'lastOffset'>>): BatchExtent {
  const { messages } = batch;
  return {
    topic: batch.topic,
    partition: batch.partition,
    firstOffset: batch.firstOffset ? batch.firstOffset() : (messages[0]?.offset ?? null),
    lastOffset: batch.lastOffset ? batch.lastOffset() : (messages.at(-1)?.offset ?? null),
    records: messages.length,
  };
}

const describe = (x: BatchExtent): string => `${x.topic}${x.partition === undefined ? '' : `[${x.partition}]`} offsets ${x.firstOffset ?? '?'}..${x.lastOffset ?? '?'}`;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 300);

export function createReadiness(opts: ReadinessOptions): Readiness {
  const { log } = opts;
  const now = opts.now ?? Date.now;
  const stallMs = opts.stallMs ?? 30_000;
  const limit = opts.fatalRepeatLimit ?? 10;
  const conditions = new Map<string, { ok: boolean; why: string; since: number }>();
  const sources = new Map<string, () => number>();
  const failures = new Map<string, { extent: BatchExtent; repeats: number; err: unknown }>();
  const epochs = new Map<string, number>(); // per partition: batchFailed calls so far
  let lastProgress = now();
  let lastIdle = now();
  let stalled = false;
  let fatalWhy: string | undefined;
  let stopped = false;

  const keyOf = (x: Pick<BatchExtent, 'topic' | 'partition'>): string => `${x.topic}\u0000${x.partition ?? ''}`;
  const pendingWork = (): string[] => {
    const out: string[] = [];
    for (const [name, count] of sources) {
      const n = count();
      if (n > 0) out.push(`${name}: ${n}`);
    }
    return out;
  };
  /** The progress check: pending work and no progress (or idle moment) for stallMs. */
  const sample = (): string | undefined => {
    const t = now();
    const work = pendingWork();
    if (work.length === 0) lastIdle = t;
    const quietMs = t - Math.max(lastProgress, lastIdle);
    const why = work.length > 0 && quietMs > stallMs ? `no progress for ${Math.round(quietMs / 1000)} s with pending work (${work.join(', ')})` : undefined;
    if (Boolean(why) !== stalled) {
      stalled = Boolean(why);
      if (why) log.warn('readiness check fails', { check: 'progress', why });
      else log.info('readiness check passes again', { check: 'progress' });
    }
    return why;
  };
  const linkDown = (): boolean => [...conditions].some(([name, c]) => !c.ok && (name === 'kafka' || name === 'mqtt'));

  const timer = (opts.sampleMs ?? 1000) > 0 ? setInterval(sample, opts.sampleMs ?? 1000) : undefined;
  timer?.unref();

  const self: Readiness = {
    set(name, ok, why = ok ? '' : 'failing') {
      const prev = conditions.get(name);
      if (prev && prev.ok === ok && (ok || prev.why === why)) return;
      const t = now();
      conditions.set(name, { ok, why, since: prev && prev.ok === ok ? prev.since : t });
      if (!prev) log.debug('readiness check', { check: name, ok, why });
      else if (prev.ok !== ok && !ok) log.warn('readiness check fails', { check: name, why });
      else if (prev.ok !== ok) log.info('readiness check passes again', { check: name, afterMs: t - prev.since });
    },
    pending(name, count) {
      sources.set(name, count);
    },
    progress() {
      lastProgress = now();
    },
    batchFailed(extent, err) {
      const key = keyOf(extent);
      epochs.set(key, (epochs.get(key) ?? 0) + 1);
      const permanent = isPermanentError(err) && !linkDown();
      opts.counters?.inc(READINESS_METRICS.batchFailures, 1, permanent ? 'permanent' : 'transient');
      if (!permanent) return; // the caller logs it; the link and progress checks cover outages
      const prev = failures.get(key);
      const repeats = prev && prev.extent.firstOffset === extent.firstOffset ? prev.repeats + 1 : 1;
      failures.set(key, { extent, repeats, err });
      log.error('batch failed with a non-retriable error', {
        topic: extent.topic,
        partition: extent.partition,
        firstOffset: extent.firstOffset,
        lastOffset: extent.lastOffset,
        records: extent.records,
        repeats,
        fatalRepeatLimit: limit,
        err,
      });
      if (repeats >= limit) self.fatal(`${describe(extent)} failed ${repeats} times in a row`, err);
    },
    batchDone(extent) {
      failures.delete(keyOf(extent));
      lastProgress = now();
    },
    resetBatches() {
      failures.clear();
    },
    eachBatch(handler) {
      return async (payload) => {
        const extent = batchExtent(payload.batch);
        const key = keyOf(extent);
        const before = epochs.get(key) ?? 0;
        try {
          await handler(payload);
        } catch (err) {
          self.batchFailed(extent, err);
          throw err;
        }
        // The handler may have reported a failure itself (an aborted transaction it retries).
        if ((epochs.get(key) ?? 0) === before) self.batchDone(extent);
      };
    },
    fatal(why, err) {
      if (fatalWhy !== undefined || stopped) return;
      fatalWhy = why;
      log.error('fatal: the process exits so that its supervisor restarts it', { why, err });
      opts.onFatal?.(err ?? new Error(why));
    },
    failing() {
      const out: Record<string, string> = {};
      for (const [name, c] of conditions) if (!c.ok) out[name] = c.why;
      const stall = sample();
      if (stall) out.progress = stall;
      const failed = [...failures.values()];
      if (failed.length > 0) {
        out.batches = failed.map((f) => `${describe(f.extent)} failed ${f.repeats}x: ${message(f.err)}`).join('; ');
      }
      if (fatalWhy !== undefined) out.fatal = fatalWhy;
      return out;
    },
    checks() {
      const failing = self.failing();
      const out: Record<string, boolean> = {};
      for (const name of [...conditions.keys(), 'progress', 'batches', 'fatal']) out[name] = !(name in failing);
      return out;
    },
    ready: () => Object.keys(self.failing()).length === 0,
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
    },
  };
  return self;
}

/**
 * Consumer health from kafkajs events: condition `name` holds from a group join until a crash,
 * fetches and finished batches are progress, and the fetch loop is always pending work while the
 * consumer runs (so a loop stuck in a batch or unable to fetch shows as a stall). A crash kafkajs
 * will not restart is fatal, unless it is a lost connection kafkajs mistook for an authentication
 * failure and `restart` is given: then the consumer is started again by `restart` (connect,
 * subscribe, run) after 1, 2, 4 ... 30 s, the condition failing meanwhile. Attach before consumer.run().
 */
export function watchConsumer(readiness: Readiness, consumer: Consumer, name = 'consumer', opts: { restart?: () => Promise<void>; log?: Logger; waitsMs?: readonly number[] } = {}): void {
  const waits = opts.waitsMs ?? [1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
  let attempt = 0;
  const restart = (error: unknown): void => {
    const wait = waits[Math.min(attempt, waits.length - 1)]!;
    attempt++;
    readiness.set(name, false, `crashed: ${message(error)} (restarting in ${wait / 1000} s)`);
    opts.log?.error(`${name} lost its connection while signing in to Kafka; restarting it`, { attempt, waitMs: wait, err: error });
    setTimeout(() => {
      opts.restart!().catch((err: unknown) => {
        // kafkajs rejects run() itself when connect fails; a crash after it comes as another CRASH.
        if (isConnectionLostDuringSasl(err) || (err as { retriable?: unknown }).retriable === true) restart(err);
        else readiness.fatal(`${name} could not be restarted`, err);
      });
    }, wait).unref?.();
  };
  let running = false;
  readiness.set(name, false, 'not yet in its consumer group');
  readiness.pending(name, () => (running ? 1 : 0));
  const alive = (): void => {
    readiness.progress();
    readiness.set(name, true);
  };
  consumer.on(consumer.events.GROUP_JOIN, () => {
    running = true;
    attempt = 0;
    readiness.resetBatches();
    alive();
  });
  consumer.on(consumer.events.FETCH, alive);
  consumer.on(consumer.events.END_BATCH_PROCESS, () => readiness.progress());
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    readiness.set(name, false, `crashed: ${message(payload.error)}${payload.restart ? ' (kafkajs restarts it)' : ''}`);
    if (!payload.restart) {
      running = false;
      if (opts.restart && isConnectionLostDuringSasl(payload.error)) restart(payload.error);
      else readiness.fatal(`${name} crashed and kafkajs will not restart it`, payload.error);
    }
  });
  consumer.on(consumer.events.STOP, () => (running = false));
}

export interface KafkaProbe {
  stop(): Promise<void>;
}

/**
 * Condition 'kafka': a cheap cluster request (Metadata) every intervalMs (3 s), without retries,
 * each allowed timeoutMs (3 s); a failed or hung one fails the check until the next one answers.
 * Needed for producers, which learn of an outage only when they next send.
 */
export function probeKafka(kafka: Pick<Kafka, 'admin'>, readiness: Readiness, opts: { intervalMs?: number; timeoutMs?: number } = {}): KafkaProbe {
  const intervalMs = opts.intervalMs ?? 3_000;
  const timeoutMs = opts.timeoutMs ?? 3_000;
  let client: { admin: Admin; connected: boolean } | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  const once = async (): Promise<void> => {
    const c = (client ??= { admin: kafka.admin({ retry: { retries: 0 } }), connected: false });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        (async () => {
          if (!c.connected) {
            await c.admin.connect();
            c.connected = true;
          }
          await c.admin.describeCluster();
        })(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
      if (!stopped) readiness.set('kafka', true);
    } catch (err) {
      if (!stopped) readiness.set('kafka', false, `cluster unreachable: ${message(err)}`);
      // A fresh client next time: this one may still be stuck in the request that timed out.
      client = undefined;
      void c.admin.disconnect().catch(() => {});
    } finally {
      clearTimeout(timer);
    }
  };
  readiness.set('kafka', false, 'not yet probed');
  const tick = (): void => {
    if (stopped || running) return;
    running = once().finally(() => (running = undefined));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await client?.admin.disconnect().catch(() => {});
    },
  };
}

/** The tracker of a service's main.ts: PROGRESS_STALL_MS and FATAL_REPEAT_LIMIT from the common config; fatal exits with 1. */
export function serviceReadiness(config: { health: { stallMs: number; fatalRepeatLimit: number } }, log: Logger, counters?: Counters): Readiness {
  return createReadiness({
    log,
    stallMs: config.health.stallMs,
    fatalRepeatLimit: config.health.fatalRepeatLimit,
    ...(counters ? { counters } : {}),
    onFatal: () => setImmediate(() => process.exit(1)),
  });
}
