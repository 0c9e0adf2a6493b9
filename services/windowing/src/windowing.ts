/**
 * Windowing: vehicle.telemetry -> per-vehicle event-time windows -> vehicle.features.
 *
 * Guarantee: exactly-once for consumers reading with isolation read_committed (kafkajs's default).
 * Each fetched batch of an input partition is one Kafka transaction: the features of the windows it
 * closed, its late and dead-lettered events, and the partition's consumer offset (with the resume
 * metadata of partition-state.ts) commit together or not at all. Every input partition has its own
 * transactional id, so when a partition moves to another instance (rebalance, or a restart after
 * kill -9) the new owner's producer fences the old one and aborts its open transaction. Open
 * windows are rebuilt from the committed offset, which is exact (see partition-state.ts).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, Message, PartitionOffset, Producer } from 'kafkajs';
import {
  deadLetterHeaders,
  ensureTopics,
  featureFields,
  SENSOR_NAMES,
  windowStartsFor,
  type AvroCodec,
  type Logger,
  type TelemetryRecord,
  type WindowDef,
} from '@pitwall/common';
import { decodeResume, encodeResume } from './commit-metadata.js';
import { createCounters, METRICS } from './metrics.js';
import { createPartitionState, type ClosedWindow, type PartitionState, type Resume } from './partition-state.js';

export type FeatureRecord = Record<string, number | string>;

export interface WindowingConfig {
  service: string;
  groupId: string;
  window: WindowDef;
  partitions: number;
  /** Fetch size per partition; small values make batches small (tests use it to stress resumption). */
  maxBytesPerPartition: number;
  /** Transactional ids are `${prefix}-${input topic}-${partition}`. */
  transactionalIdPrefix: string;
  topics: { telemetry: string; features: string; dlq: string; late: string };
}

export interface WindowingDeps {
  kafka: Kafka;
  telemetryCodec: AvroCodec<TelemetryRecord>;
  featuresCodec: AvroCodec<FeatureRecord>;
  log: Logger;
  config: WindowingConfig;
}

export interface Windowing {
  start(): Promise<void>;
  close(): Promise<void>;
  ready(): boolean;
  stats(): Record<string, number>;
}

export function toFeatureRecord(w: ClosedWindow): FeatureRecord {
  return { vehicle_id: w.vehicleId, window_start: w.start, window_end: w.end, event_count: w.eventCount, ...featureFields(w.features) };
}

/** Headers of a record on the late topic (raw telemetry value and key are kept). */
export const LATE_HEADER = Object.freeze({
  reason: 'pitwall.late.reason',
  windowStart: 'pitwall.late.window_start',
  windowEnd: 'pitwall.late.window_end',
  watermark: 'pitwall.late.watermark',
  eventTs: 'pitwall.late.event_ts',
});

export function createWindowing(deps: WindowingDeps): Windowing {
  const { config, log } = deps;
  const counters = createCounters(Object.values(METRICS));
  const states = new Map<number, PartitionState>();
  // What this instance last committed per partition: a restart of the partition after a failed
  // transaction resumes from here without waiting for the commit to become visible to fetches.
  const committed = new Map<number, { offset: bigint; resume: Resume }>();
  const producers = new Map<number, Promise<Producer>>();
  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let running = false;

  const stateFor = async (partition: number): Promise<PartitionState> => {
    let state = states.get(partition);
    if (state) return state;
    let resume = committed.get(partition)?.resume;
    if (!resume) {
      const [offsets] = await admin!.fetchOffsets({ groupId: config.groupId, topics: [config.topics.telemetry] });
      resume = decodeResume(offsets?.partitions.find((p) => p.partition === partition)?.metadata);
    }
    state = createPartitionState(config.window, resume);
    states.set(partition, state);
    log.info('partition state initialised', { partition, watermark: resume.watermark, replayUntil: resume.replayUntil.toString() });
    return state;
  };

  const producerFor = (partition: number): Promise<Producer> => {
    let p = producers.get(partition);
    if (!p) {
      const producer = deps.kafka.producer({
        transactionalId: `${config.transactionalIdPrefix}-${config.topics.telemetry}-${partition}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      p = producer.connect().then(() => producer);
      p.catch(() => producers.delete(partition));
      producers.set(partition, p);
    }
    return p;
  };

  const dropProducer = (partition: number): void => {
    const p = producers.get(partition);
    producers.delete(partition);
    void p?.then((producer) => producer.disconnect()).catch(() => {});
  };

  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const { partition } = batch;
    const state = await stateFor(partition);
    const deadLetters: Message[] = [];
    const late: Message[] = [];
    let next: bigint | undefined;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      next = BigInt(message.offset) + 1n;
      let rec: TelemetryRecord;
      try {
        if (!message.value) throw new Error('empty message value');
        rec = await deps.telemetryCodec.decode(message.value);
      } catch (err) {
        counters.inc(METRICS.deadLettered);
        deadLetters.push({
          key: message.key,
          value: message.value,
          headers: deadLetterHeaders(
            config.service,
            { reason: (err as { reason?: string }).reason ?? 'avro.decode', message: (err as Error).message },
            { topic: batch.topic, partition: String(partition), offset: message.offset },
          ),
        });
        continue;
      }
      const values = new Float64Array(SENSOR_NAMES.length);
      SENSOR_NAMES.forEach((name, i) => (values[i] = rec[name] as number));
      const watermark = state.watermark;
      const result = state.add(rec.vehicle_id, rec.ts, values, BigInt(message.offset));
      counters.inc(METRICS.consumed);
      if (rec.ignition_on === false) counters.inc(METRICS.ignitionClosed, state.closeVehicle(rec.vehicle_id, BigInt(message.offset)));
      if (result === 'duplicate') counters.inc(METRICS.duplicates);
      else if (result === 'replayed') counters.inc(METRICS.replayed);
      else if (result === 'late') {
        counters.inc(METRICS.late);
        const starts = windowStartsFor(config.window, rec.ts);
        late.push({
          key: message.key,
          value: message.value,
          headers: {
            [LATE_HEADER.reason]: 'window_closed',
            [LATE_HEADER.windowStart]: String(starts[0]),
            [LATE_HEADER.windowEnd]: String(starts[starts.length - 1]! + config.window.sizeMs),
            [LATE_HEADER.watermark]: String(watermark),
            [LATE_HEADER.eventTs]: String(rec.ts),
            'pitwall.source.topic': batch.topic,
            'pitwall.source.partition': String(partition),
            'pitwall.source.offset': message.offset,
          },
        });
      }
    }
    if (next === undefined) return;
    const closed = state.drainClosed();
    const topicMessages = [];
    if (closed.length > 0) {
      topicMessages.push({
        topic: config.topics.features,
        messages: closed.map((w) => ({ key: w.vehicleId, value: deps.featuresCodec.encode(toFeatureRecord(w)) })),
      });
    }
    if (late.length > 0) topicMessages.push({ topic: config.topics.late, messages: late });
    if (deadLetters.length > 0) topicMessages.push({ topic: config.topics.dlq, messages: deadLetters });
    const commit = { offset: state.commitOffset(next), resume: { watermark: state.watermark, replayUntil: next } };

    const producer = await producerFor(partition);
    const txn = await producer.transaction();
    try {
      if (topicMessages.length > 0) await txn.sendBatch({ topicMessages });
      await txn.sendOffsets({
        consumerGroupId: config.groupId,
        // kafkajs's types omit it, but TxnOffsetCommit carries per-partition metadata and kafkajs sends it.
        topics: [{ topic: batch.topic, partitions: [{ partition, offset: commit.offset.toString(), metadata: encodeResume(commit.resume) } as PartitionOffset] }],
      });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => {});
      // The in-memory state is ahead of what was committed: rebuild the partition from its last
      // commit. A fenced producer means another instance owns the partition now.
      states.delete(partition);
      dropProducer(partition);
      counters.inc(METRICS.transactionsAborted);
      log.warn('transaction aborted; partition resumes from its last commit', { partition, err });
      const last = committed.get(partition);
      // Nothing resolved yet since the last join: kafkajs refetches from the committed offset itself.
      if (!last) throw err;
      consumer!.seek({ topic: batch.topic, partition, offset: last.offset.toString() });
      return;
    }
    committed.set(partition, commit);
    counters.inc(METRICS.emitted, closed.length);
    // Moves kafkajs's fetch position past this batch; the transaction above decides where a
    // restarted consumer resumes (autoCommit is off, so resolved offsets are never committed).
    resolveOffset((next - 1n).toString());
    await heartbeat();
  };

  return {
    async start() {
      admin = deps.kafka.admin();
      await admin.connect();
      await ensureTopics(
        admin,
        [{ topic: config.topics.telemetry }, { topic: config.topics.features }, { topic: config.topics.dlq }, { topic: config.topics.late }],
        { partitions: config.partitions },
      );
      consumer = deps.kafka.consumer({
        groupId: config.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 250,
        maxBytesPerPartition: config.maxBytesPerPartition,
        readUncommitted: false,
      });
      // After any rebalance every partition resumes from its commit: drop all in-memory state, and
      // the producers of partitions this instance no longer owns.
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        states.clear();
        committed.clear();
        const owned = new Set(e.payload.memberAssignment[config.topics.telemetry] ?? []);
        for (const partition of [...producers.keys()]) if (!owned.has(partition)) dropProducer(partition);
        log.info('joined group', { assignment: e.payload.memberAssignment });
      });
      await consumer.connect();
      await consumer.subscribe({ topic: config.topics.telemetry, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
      running = true;
      log.info('windowing started', { window: config.window, topics: config.topics });
    },
    async close() {
      running = false;
      await consumer?.disconnect();
      await Promise.all([...producers.values()].map((p) => p.then((producer) => producer.disconnect()).catch(() => {})));
      producers.clear();
      await admin?.disconnect();
    },
    ready: () => running,
    stats() {
      let open = 0;
      let vehicles = 0;
      for (const s of states.values()) {
        open += s.openWindows();
        vehicles += s.vehicles();
      }
      return { ...counters.snapshot(), openWindows: open, vehicles };
    },
  };
}
