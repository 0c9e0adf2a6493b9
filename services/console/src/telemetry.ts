/**
 * Reads one vehicle's telemetry for a time range straight from vehicle.telemetry, for the charts
 * of the vehicle page. The topic is keyed by vehicle_id, so only the vehicle's partition is read
 * (computed like the producers' partitioner: keyPartition in common). The range of offsets comes from the
 * record timestamps (admin.fetchTopicOffsetsByTimestamp), widened by `skewMs` on both sides because
 * those are produce times while the charts are in event time; records are filtered by key and by
 * event time. A short-lived consumer (own throw-away group, nothing committed) reads that range
 * only, bounded by `maxScan` records, `maxPoints` readings of the vehicle and `timeoutMs`; the
 * result says when and why it was cut short.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { keyPartition, runFromPositions, SENSOR_NAMES, type AvroCodec, type Logger, type TelemetryRecord } from '@pitwall/common';

export interface TelemetryQuery {
  vehicleId: string;
  from: number;
  to: number;
}

export type Truncation = 'scan-limit' | 'points-limit' | 'timeout' | null;

/** Columnar, as uPlot wants it: ts[i] with sensors[name][i]. */
export interface TelemetrySeries {
  vehicle_id: string;
  from: number;
  to: number;
  partition: number | null;
  ts: number[];
  sensors: Record<string, (number | null)[]>;
  /** Indexes into ts of readings that flagged a sensor out of its plausible range, per sensor. */
  out_of_range: Record<string, number[]>;
  scanned: number;
  truncated: Truncation;
}

export interface TelemetryReaderOptions {
  topic: string;
  groupIdPrefix: string;
  maxScan: number;
  maxPoints: number;
  timeoutMs?: number;
  skewMs?: number;
}

export function emptySeries(q: TelemetryQuery, partition: number | null): TelemetrySeries {
  return { vehicle_id: q.vehicleId, from: q.from, to: q.to, partition, ts: [], sensors: Object.fromEntries(SENSOR_NAMES.map((s) => [s, []])), out_of_range: {}, scanned: 0, truncated: null };
}

/** Sorts readings by event time and turns them into columns. */
export function toSeries(q: TelemetryQuery, partition: number | null, readings: TelemetryRecord[], scanned: number, truncated: Truncation): TelemetrySeries {
  const out = emptySeries(q, partition);
  out.scanned = scanned;
  out.truncated = truncated;
  const sorted = [...readings].sort((a, b) => a.ts - b.ts);
  sorted.forEach((r, i) => {
    out.ts.push(r.ts);
    for (const s of SENSOR_NAMES) {
      const v = r[s];
      out.sensors[s]!.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
    }
    for (const s of r.out_of_range ?? []) (out.out_of_range[s] ??= []).push(i);
  });
  return out;
}

/** Offsets [start, end) to read: by timestamp, or the last `maxScan` records when none is that recent. */
export function offsetRange(low: bigint, high: bigint, atFrom: bigint, atTo: bigint, maxScan: number): { start: bigint; end: bigint } {
  const end = atTo < high ? atTo : high;
  // No record produced at or after `from`: the cars' event time may run ahead of the produce time
  // (a replay, a simulator with a time scale); the newest records are the best guess.
  let start = atFrom >= high ? high - BigInt(maxScan) : atFrom;
  if (start < low) start = low;
  return { start, end: end < start ? start : end };
}

export function createTelemetryReader(kafka: Kafka, codec: AvroCodec<TelemetryRecord>, log: Logger, opts: TelemetryReaderOptions) {
  const skew = opts.skewMs ?? 120_000;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  // One read at a time: each costs a group join and a partition scan on a small machine.
  let queue: Promise<unknown> = Promise.resolve();

  const readOnce = async (q: TelemetryQuery): Promise<TelemetrySeries> => {
    const admin = kafka.admin();
    await admin.connect();
    let partition: number;
    let range: { start: bigint; end: bigint };
    try {
      const topics = await admin.listTopics();
      if (!topics.includes(opts.topic)) return emptySeries(q, null);
      const offsets = await admin.fetchTopicOffsets(opts.topic);
      partition = keyPartition(q.vehicleId, offsets.length);
      const p = offsets.find((o) => o.partition === partition);
      if (!p) return emptySeries(q, partition);
      const byTs = async (ts: number): Promise<bigint> => {
        const found = (await admin.fetchTopicOffsetsByTimestamp(opts.topic, ts)).find((o) => o.partition === partition);
        return BigInt(found?.offset ?? p.high);
      };
      range = offsetRange(BigInt(p.low), BigInt(p.high), await byTs(q.from - skew), await byTs(q.to + skew), opts.maxScan);
    } finally {
      await admin.disconnect();
    }
    if (range.end <= range.start) return emptySeries(q, partition);

    const readings: TelemetryRecord[] = [];
    let scanned = 0;
    let truncated: Truncation = null;
    let positioned = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const timer = setTimeout(() => {
      truncated ??= 'timeout';
      finish();
    }, timeoutMs);
    const consumer = kafka.consumer({ groupId: `${opts.groupIdPrefix}-telemetry-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 200, maxBytesPerPartition: 4 * 1024 * 1024 });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: opts.topic, fromBeginning: false });
      // Next offset to read: a restarted consumer resumes there instead of re-reading.
      let next = range.start;
      await runFromPositions(consumer, () => [{ topic: opts.topic, partition, offset: String(next) }], {
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (batch.partition !== partition) return;
          for (const m of batch.messages) {
            const offset = BigInt(m.offset);
            if (offset < next || offset >= range.end) continue;
            next = offset + 1n;
            positioned = true;
            scanned++;
            if (m.key?.toString() === q.vehicleId && m.value) {
              try {
                const r = await codec.decode(m.value);
                if (r.ts >= q.from && r.ts <= q.to) readings.push(r);
                // The vehicle's readings arrive roughly in event-time order: well past the range, stop.
                else if (r.ts > q.to + skew) return finish();
              } catch (err) {
                log.debug('undecodable telemetry record skipped', { offset: m.offset, err });
              }
            }
            if (readings.length >= opts.maxPoints) truncated ??= 'points-limit';
            else if (scanned >= opts.maxScan) truncated ??= 'scan-limit';
            if (truncated || offset >= range.end - 1n) return finish();
          }
          // Control records (transaction markers) count as read too.
          if (positioned && BigInt(batch.lastOffset()) >= range.end - 1n) finish();
        },
      });
      await finished;
    } finally {
      clearTimeout(timer);
      await consumer.disconnect().catch(() => {});
    }
    return toSeries(q, partition, readings, scanned, truncated);
  };

  return {
    read(q: TelemetryQuery): Promise<TelemetrySeries> {
      const next = queue.then(() => readOnce(q));
      queue = next.catch(() => {});
      return next;
    },
  };
}

/**
 * `read` with its results kept `ttlMs` by (vehicle, from, to): a vehicle page and its reloads cost
 * one Kafka read. A read that fails is forgotten, so the next asks again.
 */
export function cacheReads(read: (q: TelemetryQuery) => Promise<TelemetrySeries>, now: () => number, ttlMs = 15_000): (q: TelemetryQuery) => Promise<TelemetrySeries> {
  const cache = new Map<string, { at: number; value: Promise<TelemetrySeries> }>();
  return (q) => {
    const key = `${q.vehicleId}\u0000${q.from}\u0000${q.to}`;
    const t = now();
    for (const [k, v] of cache) if (t - v.at > ttlMs) cache.delete(k);
    const cached = cache.get(key);
    if (cached) return cached.value;
    const value = read(q);
    cache.set(key, { at: t, value });
    value.catch(() => cache.delete(key));
    return value;
  };
}
