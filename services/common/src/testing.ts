/**
 * Test helpers shared by the workspaces' tests (@pitwall/common/testing; never imported by a service's src).
 * Fixtures: records as the services write them, to override what a test is about.
 * Kafka: `collect` a topic while a test runs (in the style of kafkajs's own testHelpers), `readAll`
 * of a topic as it is now.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { KAFKAJS_GROUPING_FILE, type groupMessagesPerPartition } from './kafkajs-grouping.js';
import { silentLogger } from './log.js';
import type { Contributor, IncidentRecord, ScoreRecord } from './records.js';
import type { SchemaStore } from './registry.js';
import { startTopicReader } from './topic-reader.js';

/**
 * An incident as the incidents service writes it; override what a test is about. Its timestamps
 * are relative to `openedAt` (opened then, one window of 60 s later updated), so a test that needs
 * them near its own clock gives that and keeps the rest.
 */
export function incident(over: Partial<IncidentRecord> = {}, openedAt = 1_700_000_000_000): IncidentRecord {
  const updatedAt = openedAt + 60_000;
  return {
    incident_id: 'inc-1',
    vehicle_id: 'car-0007',
    area: 'cooling',
    component: 'cooling system',
    action: 'Check coolant level, thermostat and radiator fan.',
    status: 'OPEN',
    severity: 'HIGH',
    revision: 1,
    last_change: 'OPENED',
    opened_at: openedAt,
    updated_at: updatedAt,
    first_window_start: openedAt,
    last_anomalous_window_end: updatedAt,
    last_window_end: updatedAt,
    anomalous_windows: 1,
    consecutive_normal: 0,
    last_score: 12.5,
    peak_score: 12.5,
    threshold: 3.25,
    model_name: 'pitwall-ae',
    model_version: '1',
    contributors: [
      { sensor: 'coolant_temp', share: 0.72, component: 'cooling system', action: 'Check coolant level, thermostat and radiator fan.' },
      { sensor: 'speed', share: 0.1, component: 'drivetrain', action: 'Inspect drivetrain.' },
    ],
    delivered_at: null,
    acknowledged_by: null,
    acknowledged_at: null,
    resolved_by: null,
    closed_at: null,
    history: [{ at: updatedAt, change: 'OPENED', severity: 'HIGH', by: null, note: null, score: 12.5 }],
    ...over,
  };
}

/**
 * Readings in the reference demo's CarData units (fleet profile cardata-v1): car1's first row of its
 * car-sensor-data.csv, and a failing car built from it with the file's extremes (coolant at
 * 1,976 °C, a battery drained to -29.9 %, a tire at its 20 psi minimum).
 */
export const CARDATA_HEALTHY: Readonly<Record<string, number>> = Object.freeze({
  coolant_temp: 39.395103,
  intake_air_temp: 34.53991,
  intake_air_flow_speed: 123.317406,
  battery_percentage: 0.82654595,
  battery_voltage: 246.12367,
  current_draw: 0.6586535,
  speed: 24.934872,
  engine_vibration_amplitude: 2493.487,
  throttle_pos: 0.034893095,
  tire_pressure_1_1: 32,
  tire_pressure_1_2: 31,
  tire_pressure_2_1: 34,
  tire_pressure_2_2: 34,
  accelerometer_1_1_value: 0.5295712,
  accelerometer_1_2_value: 0.9600553,
  accelerometer_2_1_value: 0.88389874,
  accelerometer_2_2_value: 0.043890715,
  control_unit_firmware: 2000,
});
export const CARDATA_FAILING: Readonly<Record<string, number>> = Object.freeze({ ...CARDATA_HEALTHY, coolant_temp: 1976.527, battery_percentage: -29.927, tire_pressure_2_2: 20 });

/** Contributors of a tire-pressure anomaly, the default of `windowScore`. */
export const TIRE_CONTRIBUTORS: readonly Contributor[] = Object.freeze([
  { sensor: 'tire_pressure_2_1', share: 0.7, component: 'x', action: 'y' },
  { sensor: 'speed', share: 0.2, component: 'x', action: 'y' },
]);

/**
 * The score of window `i` of `vehicle` (10 s windows from `t0`), as scoring writes it: an anomalous
 * window scores `ratio` times the threshold (0.8) and names an alert, a normal one half of it.
 */
export function windowScore(vehicle: string, i: number, opts: { anomalous?: boolean; ratio?: number; contributors?: readonly Contributor[]; t0?: number } = {}): ScoreRecord {
  const t0 = opts.t0 ?? Date.UTC(2026, 0, 1);
  const anomalous = opts.anomalous ?? true;
  const threshold = 0.8;
  return {
    vehicle_id: vehicle,
    window_start: t0 + i * 10_000,
    window_end: t0 + (i + 1) * 10_000,
    score: anomalous ? threshold * (opts.ratio ?? 1.2) : threshold * 0.5,
    threshold,
    anomalous,
    alert_id: anomalous ? `alert-${vehicle}-${i}` : null,
    model_name: 'autoencoder',
    model_version: '3',
    contributors: [...(opts.contributors ?? TIRE_CONTRIBUTORS)],
    scored_at: t0 + (i + 1) * 10_000 + 100,
  };
}

/**
 * Resolves once `check` returns true, polling every `everyMs`; rejects naming `what` after
 * `timeoutMs`. For unit tests that wait on timers: a fixed sleep passes or fails with the machine's
 * load (unit tests run in parallel), a gate only waits as long as needed.
 */
export async function eventually(what: string, check: () => boolean, timeoutMs = 5_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ------------------------------------------------------------------ Kafka
// Here rather than in test/src/support: it needs only kafkajs's types (common's own dependency) and
// a Kafka the caller built (any broker, any identity), so any workspace's tests can use it.

/** A record as a test sees it: the decoded value, the key and headers as strings, where it was. */
export interface Collected<T> {
  topic: string;
  partition: number;
  offset: string;
  /** The record's timestamp (ms since the epoch, as kafkajs gives it). */
  timestamp: string;
  key: string | null;
  /** Header values as strings (a repeated header's values joined by commas). */
  headers: Record<string, string>;
  value: T;
}

/** Turns a record's value into what the test reads: a function, or anything with `decode` (an AvroCodec). */
export type Decode<T> = ((value: Buffer) => T | Promise<T>) | { decode(value: Buffer): T | Promise<T> };

export interface ReadOptions<T> {
  topic: string;
  /** Without it, values are the raw bytes (null for a record without a value). */
  decode?: Decode<T>;
  /**
   * Records to keep, looked at before decoding (default: all). With `decode`, a record without a
   * value that is kept fails the read: leave tombstones and windowing's idle markers out here.
   */
  filter?: (record: Collected<Buffer | null>) => boolean;
}

export interface CollectOptions<T> extends ReadOptions<T> {
  /** Default: a group of its own. Give one when the test gates on the reader's committed lag. */
  groupId?: string;
  /** Default true: everything the topic holds, then what comes. */
  fromBeginning?: boolean;
  /** Default false: read_committed, records of aborted or open transactions are never seen. */
  readUncommitted?: boolean;
  maxWaitTimeInMs?: number;
  maxBytesPerPartition?: number;
}

export interface Collector<T> {
  readonly topic: string;
  readonly groupId: string;
  /** Every record kept so far, in the order they arrived (per partition: offset order). */
  readonly records: readonly Collected<T>[];
  values(): T[];
  /** Milliseconds since the last record arrived (or since the collector started). */
  quietFor(): number;
  /** Resolves with the records once there are at least `n` (checked every `everyMs`, default 50). */
  waitFor(n: number, timeoutMs?: number, what?: string, everyMs?: number): Promise<readonly Collected<T>[]>;
  /**
   * Resolves with what `until` returns once it is neither undefined, null nor false, checked every
   * `everyMs`. Rejects at once when a record could not be decoded or the consumer crashed for good,
   * and after `timeoutMs` naming `what`, the topic and how many records had arrived.
   */
  waitFor<R>(until: (records: readonly Collected<T>[]) => R | undefined | null | false, timeoutMs?: number, what?: string, everyMs?: number): Promise<R>;
  /** Leaves the group; safe to call twice. */
  stop(): Promise<void>;
}

const headersOf = (m: KafkaMessage): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
};

/** Reads one record as ReadOptions say: undefined when the filter leaves it out. */
async function toRecord<T>(topic: string, partition: number, m: KafkaMessage, opts: ReadOptions<T>): Promise<Collected<T> | undefined> {
  const raw: Collected<Buffer | null> = { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key?.toString() ?? null, headers: headersOf(m), value: m.value };
  if (opts.filter && !opts.filter(raw)) return undefined;
  const { decode } = opts;
  if (!decode) return raw as Collected<T>;
  if (m.value === null) throw new Error(`${topic}[${partition}]@${m.offset} has no value to decode (a tombstone or a control record); leave it out with a filter if the test expects it`);
  const value = typeof decode === 'function' ? await decode(m.value) : await decode.decode(m.value);
  return { ...raw, value };
}

const describeFailure = (topic: string, err: unknown): Error => new Error(`reading ${topic}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });

/**
 * Collects `topic` from its beginning (read_committed) while the test runs, with a consumer of its
 * own; the test waits on what arrived with `waitFor` and calls `stop` when done. A record that
 * cannot be decoded is not skipped: the next `waitFor` rejects with it.
 */
export async function collect(kafka: Kafka, opts: CollectOptions<Buffer | null> & { decode?: undefined }): Promise<Collector<Buffer | null>>;
export async function collect<T>(kafka: Kafka, opts: CollectOptions<T> & { decode: Decode<T> }): Promise<Collector<T>>;
export async function collect<T>(kafka: Kafka, opts: CollectOptions<T>): Promise<Collector<T>> {
  const { topic } = opts;
  const groupId = opts.groupId ?? `collect.${topic}.${randomUUID()}`;
  const records: Collected<T>[] = [];
  let lastAt = Date.now();
  let failure: Error | undefined;
  const consumer: Consumer = kafka.consumer({
    groupId,
    readUncommitted: opts.readUncommitted ?? false,
    ...(opts.maxWaitTimeInMs === undefined ? {} : { maxWaitTimeInMs: opts.maxWaitTimeInMs }),
    ...(opts.maxBytesPerPartition === undefined ? {} : { maxBytesPerPartition: opts.maxBytesPerPartition }),
  });
  // kafkajs restarts a consumer after a retriable crash by itself; any other crash ends the collection.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) failure ??= describeFailure(topic, payload.error);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning ?? true });
  await consumer.run({
    eachMessage: async ({ topic: from, partition, message }) => {
      try {
        const record = await toRecord(from, partition, message, opts);
        if (record) records.push(record);
        lastAt = Date.now();
      } catch (err) {
        failure ??= describeFailure(topic, err);
      }
    },
  });
  let stopped: Promise<void> | undefined;
  const waitFor = async <R>(until: number | ((records: readonly Collected<T>[]) => R | undefined | null | false), timeoutMs = 60_000, what?: string, everyMs = 50): Promise<unknown> => {
    const check = typeof until === 'number' ? (rs: readonly Collected<T>[]) => (rs.length >= until ? rs : undefined) : until;
    const label = what ?? (typeof until === 'number' ? `${until} records` : 'the records awaited');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (failure) throw failure;
      const got = check(records);
      if (got !== undefined && got !== null && got !== false) return got;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label} on ${topic} (${records.length} records collected)`);
      await sleep(everyMs);
    }
  };
  return {
    topic,
    groupId,
    records,
    values: () => records.map((r) => r.value),
    quietFor: () => Date.now() - lastAt,
    waitFor: waitFor as Collector<T>['waitFor'],
    stop: () => (stopped ??= consumer.disconnect()),
  };
}

/**
 * Every record of `topic` up to its end as of the call (read_committed; transaction markers and
 * aborted records count as read), with a throw-away group. Rejects when a record cannot be decoded
 * or the end is not reached within `timeoutMs`.
 */
export async function readAll(kafka: Kafka, opts: ReadOptions<Buffer | null> & { decode?: undefined; timeoutMs?: number }): Promise<Collected<Buffer | null>[]>;
export async function readAll<T>(kafka: Kafka, opts: ReadOptions<T> & { decode: Decode<T>; timeoutMs?: number }): Promise<Collected<T>[]>;
export async function readAll<T>(kafka: Kafka, opts: ReadOptions<T> & { timeoutMs?: number }): Promise<Collected<T>[]> {
  const records: Collected<T>[] = [];
  let failure: Error | undefined;
  const reader = await startTopicReader(kafka, {
    topic: opts.topic,
    groupIdPrefix: 'read-all',
    log: silentLogger,
    timeoutMs: opts.timeoutMs ?? 60_000,
    onBatch: async (batch) => {
      for (const m of batch.messages) {
        try {
          const record = await toRecord(batch.topic, batch.partition, m, opts);
          if (record) records.push(record);
        } catch (err) {
          failure ??= describeFailure(opts.topic, err);
        }
      }
    },
  });
  try {
    await reader.caughtUp;
  } finally {
    await reader.stop();
  }
  if (failure) throw failure;
  return records;
}

/** kafkajs's own groupMessagesPerPartition, loaded afresh from its file (the module cache holds common's), to compare with. */
export function kafkajsOwnGrouping(): typeof groupMessagesPerPartition {
  const file = KAFKAJS_GROUPING_FILE;
  if (file === undefined) throw new Error('this kafkajs has no src/producer/groupMessagesPerPartition.js');
  const require = createRequire(import.meta.url);
  const cached = require.cache[file];
  delete require.cache[file];
  try {
    return require(file) as typeof groupMessagesPerPartition;
  } finally {
    if (cached) require.cache[file] = cached;
    else delete require.cache[file];
  }
}

/** A schema store without a registry: one fixed id, as a service sees after its first lookup (benches, unit tests). */
export function fixedSchemaStore(schema: unknown, id = 1): SchemaStore {
  return { register: async () => id, lookup: async () => id, setCompatibility: async () => {}, getSchema: async () => schema as never };
}
