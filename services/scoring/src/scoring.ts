/**
 * The scoring service: `vehicle.features` -> model -> `maintenance.alerts`.
 *
 * Delivery is at-least-once. Per chunk of a fetched batch (at most `batchSize` records): decode
 * every record, score all decodable ones in one predict call, produce the alerts (score above
 * the model threshold), one `vehicle.scores` record per scored window (normal or not) and the dead
 * letters in one idempotent send with acks=-1, and only then resolve and commit the chunk's
 * offsets. A crash between send and commit re-scores the chunk;
 * the alert ids are a hash of window and model version, so the duplicates are recognisable
 * downstream.
 *
 * An optional shadow model (shadow.ts) scores the same vectors right after the active one; it
 * only feeds counters and reports, once the chunk's send succeeded.
 *
 * What cannot ever be scored (bad framing, a body that does not decode, missing or non-finite
 * features) goes to `vehicle.features.dlq` with its raw bytes and dead-letter headers, and the
 * chunk continues. Anything that may pass (registry or broker trouble) fails the batch, which
 * kafkajs retries from the last committed offset.
 */
import type { Consumer, EachBatchPayload, Kafka, TopicMessages } from 'kafkajs';
import {
  createBoundedSender,
  createProducerSession,
  type ProducerSession,
  createMetricsRegistry,
  createReadiness,
  DEFAULT_MAX_BATCH_BYTES,
  provisionTopics,
  runConsumer,
  readSendBudget,
  secondsSince,
  watchConsumer,
  watchConsumerLag,
  type AvroCodec,
  type Counters,
  type Logger,
  type Readiness,
  type Registry,
  type Service,
} from '@pitwall/common';
import { createChunkScorer, SERVICE, type FeatureRecord, type ScoringInput } from './chunk.js';
import { type AlertRecord, type LoadedModel, type ScoreRecord } from '@pitwall/model';
import type { ModelHolder, ModelSource } from './model-holder.js';
import { COUNTERS, createCounters, createScoringHistograms, METRICS } from './metrics.js';
import type { ShadowScorer } from './shadow.js';
import type { DriftMonitor } from './drift.js';

export { SERVICE, type FeatureRecord } from './chunk.js';

export interface ScoringConfig {
  /**
   * scores: every window the active model scored (schemas/score/v1.avsc), key = vehicle_id.
   * features: the topic consumed, vehicle.telemetry when `input` is readings.
   */
  topics: { features: string; alerts: string; scores: string; featuresDlq: string };
  /** windows (default): feature records; readings: telemetry records, each scored (chunk.ts). */
  input?: ScoringInput;
  groupId: string;
  /** Most records scored by one predict call. */
  batchSize: number;
  /** Share of expected readings a window needs to be scored (default DEFAULT_MIN_COVERAGE). */
  minCoverage?: number;
  /** Partitions for topics this service creates when missing. */
  partitions: number;
  /** Where a consumer group without committed offsets starts: true = oldest retained record, false = only new ones. */
  fromBeginning: boolean;
  /** Most bytes per send (KAFKA_MAX_BATCH_BYTES; lowered to the topics' max.message.bytes at start). */
  maxBatchBytes?: number;
}

export interface ScoringDeps {
  kafka: Kafka;
  featuresCodec: AvroCodec<FeatureRecord>;
  alertsCodec: AvroCodec<AlertRecord>;
  scoresCodec: AvroCodec<ScoreRecord>;
  model: LoadedModel | ModelSource | ModelHolder;
  /**
   * Further served models (MODEL_NAME's other names): each window is scored by the served model
   * declaring its size (routes.ts), `model` included. The shadow shadows `model` only.
   */
  routes?: readonly (ModelSource | ModelHolder)[];
  config: ScoringConfig;
  log: Logger;
  /** Clock for created_at and dead-letter times. */
  now?: () => number;
  /** Scores every chunk a second time, for comparison only (never produced). */
  shadow?: Pick<ShadowScorer, 'current' | 'observe' | 'record'>;
  /** Drift of the scored windows from the models' training data (drift.ts). */
  drift?: Pick<DriftMonitor, 'observe'>;
  /** Shared with the model watcher/control so stats() shows every counter; created when absent. */
  counters?: Counters;
  /** Readiness checks (main.ts shares it with /readyz); one of its own when absent. */
  readiness?: Readiness;
  /** Where histograms and lag gauges are registered (main.ts serves it on /metrics); the counters' registry when absent. */
  metrics?: Registry;
}

export interface ScoringStats {
  counters: Record<string, number>;
  model: { name: string; version: string; threshold: number };
  /** Every served model (the first is `model`) and the window size it scores. */
  models: { name: string; version: string; threshold: number; windowMs: number }[];
  shadow: { name: string; version: string; threshold: number } | null;
  groupJoined: boolean;
  lastBatchAt: number | null;
}

/** start: creates missing topics, joins the group; close: the current chunk finishes first; ready: in the group, not crashed. */
export type Scoring = Service<ScoringStats>;

export function createScoring(deps: ScoringDeps): Scoring {
  const { kafka, featuresCodec, alertsCodec, scoresCodec, config, model } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'scoring' });
  const registry = deps.metrics ?? deps.counters?.registry ?? createMetricsRegistry({ processMetrics: false });
  const counters = deps.counters ?? createCounters(COUNTERS, registry);
  const histograms = createScoringHistograms(registry);
  // A fixed model (tests, pinned versions) or a holder that swaps versions between batches.
  const source: ModelSource | ModelHolder = 'current' in model ? model : { current: () => model };
  // Idempotent: a retried send cannot duplicate alerts within a producer session; needs acks=-1.
  const producer: ProducerSession = createProducerSession(() => kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }));
  const consumer: Consumer = kafka.consumer({ groupId: config.groupId, allowAutoTopicCreation: false });
  const sender = createBoundedSender({ maxBytes: config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, service: SERVICE, dlqTopic: config.topics.featuresDlq, log });
  // After a refused multi-record send the producer's sequence numbers are out of step: a new session.
  const resetProducer = (): Promise<void> => producer.reset();
  let started = false;
  let closing = false;
  let groupJoined = false;
  let crashed = false;
  let lastBatchAt: number | null = null;

  consumer.on(consumer.events.GROUP_JOIN, () => {
    groupJoined = true;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    groupJoined = false;
    crashed = !payload.restart;
    log.error('consumer crashed', { err: payload.error, restart: payload.restart });
  });
  const readiness = deps.readiness ?? createReadiness({ log });
  readiness.set('scoring', false, 'starting');
  const runConsumerLoop = (): Promise<void> =>
    runConsumer(
      consumer,
      { topics: [config.topics.features], fromBeginning: config.fromBeginning },
      { autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: readiness.eachBatch(eachBatch) },
    );
  watchConsumer(readiness, consumer, 'consumer', { restart: runConsumerLoop, log });
  watchConsumerLag(registry, consumer, config.groupId);

  const processChunk = createChunkScorer({
    featuresCodec,
    alertsCodec,
    scoresCodec,
    source,
    routes: deps.routes,
    featuresTopic: config.topics.features,
    input: config.input,
    minCoverage: config.minCoverage,
    counters,
    log,
    now,
    shadow: deps.shadow,
    drift: deps.drift,
  });

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    try {
      for (let i = 0; i < batch.messages.length; i += config.batchSize) {
        // Stop early on shutdown or rebalance; unresolved records are fetched again by whoever owns them next.
        if (!payload.isRunning() || payload.isStale()) return;
        const chunk = batch.messages.slice(i, i + config.batchSize);
        const scoringDone = histograms.chunkSeconds.startTimer();
        const out = await processChunk(batch.partition, chunk);
        scoringDone();
        const topicMessages: TopicMessages[] = [];
        if (out.alerts.length) topicMessages.push({ topic: config.topics.alerts, messages: out.alerts });
        if (out.scores.length) topicMessages.push({ topic: config.topics.scores, messages: out.scores });
        if (out.deadLetters.length) topicMessages.push({ topic: config.topics.featuresDlq, messages: out.deadLetters });
        if (topicMessages.length) await sender.send((chunk) => producer.sendBatch({ topicMessages: chunk, acks: -1 }), topicMessages, { reset: resetProducer });
        const producedAt = now();
        for (const end of out.alertWindowEnds) histograms.windowEndToAlert.observe(secondsSince(end, producedAt));
        if (out.shadow) deps.shadow!.record(out.shadow);
        payload.resolveOffset(chunk.at(-1)!.offset);
        // With autoCommit off, commitOffsetsIfNecessary() alone commits nothing: pass the resolved offsets.
        await payload.commitOffsetsIfNecessary(payload.uncommittedOffsets());
        await payload.heartbeat();
        counters.inc(METRICS.batches);
        counters.inc(METRICS.recordsIn, chunk.length);
        counters.inc(METRICS.windowsScored, out.scored);
        counters.inc(METRICS.alertsProduced, out.alerts.length);
        counters.inc(METRICS.scoresProduced, out.scores.length);
        counters.inc(METRICS.deadLettered, out.deadLetters.length);
        lastBatchAt = now();
        const fields = { partition: batch.partition, records: chunk.length, scored: out.scored, alerts: out.alerts.length, deadLettered: out.deadLetters.length, lastOffset: chunk.at(-1)!.offset };
        if (out.alerts.length) log.info('alerts produced', fields);
        else log.debug('batch scored', fields);
      }
    } catch (err) {
      counters.inc(METRICS.batchFailures);
      log.warn('batch failed; kafkajs retries it from the last committed offset', { err, partition: batch.partition });
      throw err;
    }
  }

  return {
    async start() {
      if (started) throw new Error('scoring already started');
      started = true;
      // vehicle.scores gets the same partition count as the incident topics it is co-partitioned with.
      await provisionTopics(kafka, [{ topic: config.topics.features }, { topic: config.topics.alerts }, { topic: config.topics.scores }, { topic: config.topics.featuresDlq }], {
        partitions: config.partitions,
      });
      const { alerts, scores, featuresDlq } = config.topics;
      sender.setBudget(await readSendBudget(kafka, [alerts, scores, featuresDlq], config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, log));
      await producer.connect();
      await runConsumerLoop();
      readiness.set('scoring', true);
      log.info('scoring started', {
        topics: config.topics,
        groupId: config.groupId,
        input: config.input ?? 'windows',
        model: `${source.current().metadata.name}/${source.current().metadata.version}`,
        threshold: source.current().metadata.threshold,
        models: [source, ...(deps.routes ?? [])].map(
          (s) => `${s.current().metadata.name}/${s.current().metadata.version}: ${config.input === 'readings' ? 'each reading' : `${s.current().metadata.window.sizeMs} ms windows`}`,
        ),
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      readiness.set('scoring', false, 'closing');
      await consumer.disconnect();
      await producer.disconnect();
    },
    ready: () => started && !closing && groupJoined && !crashed && readiness.ready(),
    stats: () => ({
      counters: counters.snapshot(),
      model: (({ name, version, threshold }) => ({ name, version, threshold }))(source.current().metadata),
      models: [source, ...(deps.routes ?? [])].map((s) => (({ name, version, threshold, window }) => ({ name, version, threshold, windowMs: window.sizeMs }))(s.current().metadata)),
      shadow: (({ name, version, threshold }) => (name ? { name, version, threshold } : null))(deps.shadow?.current()?.metadata ?? { name: '', version: '', threshold: 0 }),
      groupJoined,
      lastBatchAt,
    }),
  };
}
