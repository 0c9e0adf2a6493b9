/**
 * Windowing: vehicle.telemetry -> per-vehicle event-time windows -> vehicle.features.
 *
 * Guarantee (this version): at-least-once. Features of a closed window are produced (acks=all)
 * before the offsets that contain its events are committed; a crash between the two re-emits those
 * windows with identical values. Open windows survive a restart or rebalance: they are rebuilt from
 * the committed offset (see partition-state.ts for why that is exact).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import {
  deadLetterHeaders,
  ensureTopics,
  featureFields,
  SENSOR_NAMES,
  type AvroCodec,
  type Logger,
  type TelemetryRecord,
  type WindowDef,
} from '@pitwall/common';
import { decodeResume, encodeResume } from './commit-metadata.js';
import { createCounters, METRICS } from './metrics.js';
import { createPartitionState, type ClosedWindow, type PartitionState } from './partition-state.js';

export type FeatureRecord = Record<string, number | string>;

export interface WindowingConfig {
  service: string;
  groupId: string;
  window: WindowDef;
  partitions: number;
  /** Fetch size per partition; small values make batches small (tests use it to stress resumption). */
  maxBytesPerPartition: number;
  topics: { telemetry: string; features: string; dlq: string };
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

export function createWindowing(deps: WindowingDeps): Windowing {
  const { config, log } = deps;
  const counters = createCounters();
  const states = new Map<number, PartitionState>();
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let admin: Admin | undefined;
  let running = false;

  const stateFor = async (partition: number): Promise<PartitionState> => {
    let state = states.get(partition);
    if (state) return state;
    const [committed] = await admin!.fetchOffsets({ groupId: config.groupId, topics: [config.topics.telemetry] });
    const meta = committed?.partitions.find((p) => p.partition === partition)?.metadata;
    const resume = decodeResume(meta);
    state = createPartitionState(config.window, resume);
    states.set(partition, state);
    log.info('partition state initialised', { partition, watermark: resume.watermark, replayUntil: resume.replayUntil.toString() });
    return state;
  };

  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const { partition } = batch;
    const state = await stateFor(partition);
    const deadLetters: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
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
      const result = state.add(rec.vehicle_id, rec.ts, values, BigInt(message.offset));
      counters.inc(METRICS.consumed);
      if (result === 'duplicate') counters.inc(METRICS.duplicates);
      else if (result === 'late') counters.inc(METRICS.late);
      else if (result === 'replayed') counters.inc(METRICS.replayed);
    }
    if (next === undefined) return;
    // Moves kafkajs's fetch position past this batch. Only the commit below decides where a
    // restarted consumer resumes (autoCommit is off, so resolved offsets are never committed).
    resolveOffset((next - 1n).toString());
    const closed = state.drainClosed();
    const topicMessages = [];
    if (closed.length > 0) {
      topicMessages.push({
        topic: config.topics.features,
        messages: closed.map((w) => ({ key: w.vehicleId, value: deps.featuresCodec.encode(toFeatureRecord(w)) })),
      });
    }
    if (deadLetters.length > 0) topicMessages.push({ topic: config.topics.dlq, messages: deadLetters });
    if (topicMessages.length > 0) await producer!.sendBatch({ acks: -1, topicMessages });
    counters.inc(METRICS.emitted, closed.length);
    await consumer!.commitOffsets([
      {
        topic: batch.topic,
        partition,
        offset: state.commitOffset(next).toString(),
        metadata: encodeResume({ watermark: state.watermark, replayUntil: next }),
      },
    ]);
    await heartbeat();
  };

  return {
    async start() {
      admin = deps.kafka.admin();
      await admin.connect();
      await ensureTopics(admin, [{ topic: config.topics.telemetry }, { topic: config.topics.features }, { topic: config.topics.dlq }], {
        partitions: config.partitions,
      });
      producer = deps.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      consumer = deps.kafka.consumer({
        groupId: config.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 250,
        maxBytesPerPartition: config.maxBytesPerPartition,
      });
      // After any rebalance every partition resumes from its commit: drop all in-memory state.
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        states.clear();
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
      await producer?.disconnect();
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
