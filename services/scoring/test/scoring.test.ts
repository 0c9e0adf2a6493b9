/**
 * The scoring service against an in-memory stand-in for kafkajs (no brokers here): checks what is
 * produced, dead-lettered and committed, and in which order.
 */
import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ConsumerRunConfig, EachBatchPayload, Kafka, KafkaMessage, ProducerBatch } from 'kafkajs';
import {
  createAvroCodec,
  createCounters,
  createMetricsRegistry,
  defaultSchemasDir,
  FEATURE_NAMES,
  DLQ_HEADER,
  featureFields,
  loadSchemaFile,
  SENSOR_NAMES,
  silentLogger,
  TransientError,
  type AvroCodec,
  type SchemaStore,
} from '@pitwall/common';
import { labelled, METRICS } from '../src/metrics.js';
import { alertId, WARMUP_MOVING, type AlertRecord, type ModelMetadata, type ScoreRecord } from '@pitwall/model';
import { createDriftMonitor, type DriftMonitor } from '../src/drift.js';
import { createScoring, type FeatureRecord, type ScoringConfig } from '../src/scoring.js';
import { createShadowScorer, type ShadowScorer } from '../src/shadow.js';
import { linearModel, metadataFor, vectorWith } from '@pitwall/model/testing';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const TOPICS = { features: 'vehicle.features', alerts: 'maintenance.alerts', scores: 'vehicle.scores', featuresDlq: 'vehicle.features.dlq' };
const NOW = 1_735_700_000_000;

function fakeKafka(existingTopics: string[] = []) {
  const calls: string[] = [];
  const sent: ProducerBatch[] = [];
  const created: string[] = [];
  const listeners = new Map<string, Array<(e: { payload: unknown }) => void>>();
  const state = { runConfig: undefined as ConsumerRunConfig | undefined, sendError: undefined as Error | undefined, producerConfig: undefined as unknown, subscribed: undefined as unknown };
  const admin = {
    connect: async () => void calls.push('admin.connect'),
    listTopics: async () => [...existingTopics, ...created],
    createTopics: async ({ topics }: { topics: { topic: string; numPartitions: number }[] }) => {
      created.push(...topics.map((t) => `${t.topic}/${t.numPartitions}`));
      return true;
    },
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({ topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 1 }] })) }),
    fetchTopicOffsets: async () => [{ partition: 0, offset: '0', high: '0', low: '0' }],
    disconnect: async () => void calls.push('admin.disconnect'),
  };
  const producer = {
    connect: async () => void calls.push('producer.connect'),
    sendBatch: async (batch: ProducerBatch) => {
      calls.push('send');
      if (state.sendError) throw state.sendError;
      sent.push(batch);
      return [];
    },
    disconnect: async () => void calls.push('producer.disconnect'),
  };
  const consumer = {
    events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
    on: (event: string, listener: (e: { payload: unknown }) => void) => {
      listeners.set(event, [...(listeners.get(event) ?? []), listener]);
      return () => {};
    },
    connect: async () => void calls.push('consumer.connect'),
    subscribe: async (s: unknown) => {
      state.subscribed = s;
    },
    run: async (config: ConsumerRunConfig) => {
      state.runConfig = config;
    },
    disconnect: async () => void calls.push('consumer.disconnect'),
  };
  const kafka = {
    admin: () => admin,
    producer: (config: unknown) => {
      state.producerConfig = config;
      return producer;
    },
    consumer: () => consumer,
  } as unknown as Kafka;
  const emit = (event: string, payload: unknown): void => listeners.get(event)?.forEach((l) => l({ payload }));
  return { kafka, calls, sent, created, state, emit };
}

function message(offset: number, value: Buffer | null): KafkaMessage {
  return { key: Buffer.from('car'), value, timestamp: String(NOW), attributes: 0, offset: String(offset), headers: {} };
}

function payloadFor(calls: string[], partition: number, messages: KafkaMessage[]): EachBatchPayload {
  let resolved: string | undefined;
  return {
    batch: { topic: TOPICS.features, partition, messages, highWatermark: '1000', isEmpty: () => messages.length === 0 },
    resolveOffset: (o: string) => {
      resolved = o;
      calls.push(`resolve:${o}`);
    },
    uncommittedOffsets: () => ({ topics: resolved === undefined ? [] : [{ topic: TOPICS.features, partitions: [{ partition, offset: String(Number(resolved) + 1) }] }] }),
    commitOffsetsIfNecessary: async (offsets?: { topics: { partitions: { offset: string }[] }[] }) => {
      calls.push(`commit:${offsets?.topics[0]?.partitions[0]?.offset ?? 'none'}`);
    },
    heartbeat: async () => {},
    pause: () => () => {},
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
}

async function setup(opts: { batchSize?: number; store?: SchemaStore; shadow?: ShadowScorer; drift?: DriftMonitor; metadata?: Partial<ModelMetadata> } = {}) {
  const featuresSchema = await loadSchemaFile(defaultSchemasDir(), 'features', 1);
  const alertSchema = await loadSchemaFile(defaultSchemasDir(), 'alert', 1);
  const store: SchemaStore = opts.store ?? { setCompatibility: async () => {}, register: async () => 1, lookup: async () => 1, getSchema: async () => featuresSchema };
  const featuresCodec = await createAvroCodec<FeatureRecord>(store, `${TOPICS.features}-value`, featuresSchema);
  const alertsCodec: AvroCodec<AlertRecord> = await createAvroCodec<AlertRecord>(
    { setCompatibility: async () => {}, register: async () => 2, lookup: async () => 2, getSchema: async () => alertSchema },
    `${TOPICS.alerts}-value`,
    alertSchema,
  );
  const scoreSchema = await loadSchemaFile(defaultSchemasDir(), 'score', 1);
  const scoresCodec = await createAvroCodec<ScoreRecord>(
    { setCompatibility: async () => {}, register: async () => 3, lookup: async () => 3, getSchema: async () => scoreSchema },
    `${TOPICS.scores}-value`,
    scoreSchema,
  );
  // Predicts 0 everywhere, with mean 0 / std 1: score = mean of squared raw features.
  const model = linearModel(0, 0);
  let predictCalls = 0;
  const predict = model.predict.bind(model);
  model.predict = (x: tf.Tensor | tf.Tensor[], args?: object) => {
    predictCalls++;
    return predict(x, args);
  };
  const fake = fakeKafka();
  const config: ScoringConfig = { topics: TOPICS, groupId: 'pitwall-scoring', batchSize: opts.batchSize ?? 100, partitions: 3, fromBeginning: false };
  const scoring = createScoring({
    kafka: fake.kafka,
    featuresCodec,
    alertsCodec,
    scoresCodec,
    model: { model, metadata: metadataFor({ name: 'pitwall-ae', version: '1', threshold: 1, ...opts.metadata }), dir: '/models/pitwall-ae/1' },
    config,
    log: silentLogger,
    now: () => NOW,
    ...(opts.shadow ? { shadow: opts.shadow } : {}),
    ...(opts.drift ? { drift: opts.drift } : {}),
  });
  await scoring.start();
  const record = (vehicle: string, windowStart: number, values: Record<string, number>, eventCount = 10): Buffer =>
    featuresCodec.encode({
      vehicle_id: vehicle,
      window_start: windowStart,
      window_end: windowStart + 10_000,
      event_count: eventCount,
      ...featureFields(vectorWith(values)),
    });
  const scoresIn = async (batch: ProducerBatch): Promise<ScoreRecord[]> =>
    Promise.all((batch.topicMessages!.find((t) => t.topic === TOPICS.scores)?.messages ?? []).map((m) => scoresCodec.decode(m.value as Buffer)));
  return { scoring, fake, record, alertsCodec, featuresCodec, scoresIn, predictCalls: () => predictCalls };
}

describe('createScoring', () => {
  it('start: creates missing topics, subscribes and runs with autoCommit off', async () => {
    const { fake, scoring } = await setup();
    assert.deepEqual(fake.created.sort(), ['maintenance.alerts/3', 'vehicle.features.dlq/3', 'vehicle.features/3', 'vehicle.scores/3']);
    assert.deepEqual(fake.state.subscribed, { topics: ['vehicle.features'], fromBeginning: false });
    assert.equal(fake.state.runConfig?.autoCommit, false);
    assert.equal(fake.state.runConfig?.eachBatchAutoResolve, false);
    assert.deepEqual(fake.state.producerConfig, { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await assert.rejects(scoring.start(), /already started/);
  });

  it('scores a batch in one predict call, produces alerts keyed by vehicle, dead-letters bad records, then commits', async () => {
    const { fake, scoring, record, alertsCodec, predictCalls } = await setup();
    const truncatedAvro = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), Buffer.from([0x40])]);
    const messages = [
      message(10, record('car-0001', 1_000_000, {})),
      message(11, record('car-0002', 1_000_000, { coolant_temp: 4, speed: 2 })),
      message(12, Buffer.from('{"not":"avro"}')),
      message(13, null),
      message(14, truncatedAvro),
      message(15, record('car-0003', 1_000_000, { coolant_temp: Number.NaN })),
      message(16, record('car-0004', 1_010_000, { battery_voltage: 0.5 })),
    ];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 2, messages));

    assert.equal(predictCalls(), 1);
    assert.deepEqual(fake.calls.slice(-3), ['send', 'resolve:16', 'commit:17']);
    assert.equal(fake.sent.length, 1);
    assert.equal(fake.sent[0]!.acks, -1);
    const byTopic = new Map(fake.sent[0]!.topicMessages!.map((t) => [t.topic, t.messages]));

    const alerts = byTopic.get('maintenance.alerts')!;
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.key, 'car-0002');
    const alert = await alertsCodec.decode(alerts[0]!.value as Buffer);
    // 6 coolant features at 4 and 6 speed features at 2: (96 + 24) / 108, above the threshold of 1.
    assert.ok(Math.abs(alert.score - (96 + 24) / 108) < 1e-6, `score ${alert.score}`);
    assert.equal(alert.vehicle_id, 'car-0002');
    assert.equal(alert.window_start, 1_000_000);
    assert.equal(alert.window_end, 1_010_000);
    assert.equal(alert.created_at, NOW);
    assert.equal(alert.model_name, 'pitwall-ae');
    assert.deepEqual(
      alert.contributors.map((c) => c.sensor),
      ['coolant_temp', 'speed'],
    );

    const dlq = byTopic.get('vehicle.features.dlq')!;
    const reasons = dlq.map((m) => [m.headers![DLQ_HEADER.reason], m.headers!['pitwall.source.offset']]);
    assert.deepEqual(reasons, [
      ['avro.framing', '12'],
      ['payload.empty', '13'],
      ['avro.decode', '14'],
      ['features.non_finite', '15'],
    ]);
    assert.equal(dlq[0]!.headers!['pitwall.source.topic'], 'vehicle.features');
    assert.equal(dlq[0]!.headers!['pitwall.source.partition'], '2');
    assert.equal(dlq[0]!.headers![DLQ_HEADER.service], 'scoring');
    assert.deepEqual(dlq[0]!.value, Buffer.from('{"not":"avro"}'));

    const c = scoring.stats().counters;
    assert.equal(c[METRICS.recordsIn], 7);
    assert.equal(c[METRICS.windowsScored], 3);
    assert.equal(c[METRICS.alertsProduced], 1);
    assert.equal(c[METRICS.deadLettered], 4);
    assert.equal(scoring.stats().lastBatchAt, NOW);
  });

  it('alert carries threshold and shares of the normalized error', async () => {
    const { fake, record, alertsCodec } = await setup();
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, [message(0, record('car-0009', 0, { coolant_temp: 4, speed: 2 }))]));
    const alert = await alertsCodec.decode(fake.sent[0]!.topicMessages!.find((t) => t.topic === 'maintenance.alerts')!.messages[0]!.value as Buffer);
    assert.equal(alert.threshold, 1);
    assert.ok(Math.abs(alert.contributors[0]!.share - 0.8) < 1e-6, `share ${alert.contributors[0]!.share}`);
    assert.ok(Math.abs(alert.contributors[1]!.share - 0.2) < 1e-6);
  });

  it('windows at or below the threshold produce no alert, only their scores, and are committed', async () => {
    const { fake, record, scoring, scoresIn } = await setup();
    // Scores 6/108 and 96/108, both below the threshold of 1.
    const messages = [message(5, record('car-0001', 0, { speed: 1 })), message(6, record('car-0002', 0, { coolant_temp: 4 }))];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 1, messages));
    assert.equal(fake.sent.length, 1);
    assert.deepEqual(
      fake.sent[0]!.topicMessages!.map((t) => t.topic),
      ['vehicle.scores'],
    );
    const scores = await scoresIn(fake.sent[0]!);
    assert.deepEqual(
      scores.map((s) => [s.vehicle_id, s.anomalous, s.alert_id]),
      [
        ['car-0001', false, null],
        ['car-0002', false, null],
      ],
    );
    assert.ok(Math.abs(scores[1]!.score - 96 / 108) < 1e-6);
    assert.deepEqual(
      scores[1]!.contributors.map((c) => c.sensor),
      ['coolant_temp'],
    );
    assert.deepEqual(fake.calls.slice(-3), ['send', 'resolve:6', 'commit:7']);
    assert.equal(scoring.stats().counters[METRICS.windowsScored], 2);
    assert.equal(scoring.stats().counters[METRICS.scoresProduced], 2);
  });

  it('every scored window gets one vehicle.scores record in the same send as the alerts; anomalous ones name their alert', async () => {
    const { fake, record, alertsCodec, scoresIn } = await setup();
    const messages = [
      message(20, record('car-0001', 0, { speed: 1 })),
      message(21, record('car-0002', 0, { coolant_temp: 4, speed: 2, throttle_pos: 1, battery_voltage: 0.5 })),
      message(22, record('car-0003', 0, { coolant_temp: 40 }, 2)),
      message(23, Buffer.from('junk')),
    ];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    assert.equal(fake.sent.length, 1, 'one send for alerts, scores and dead letters');
    assert.deepEqual(fake.sent[0]!.topicMessages!.map((t) => t.topic).sort(), ['maintenance.alerts', 'vehicle.features.dlq', 'vehicle.scores']);
    const scoreMsgs = fake.sent[0]!.topicMessages!.find((t) => t.topic === 'vehicle.scores')!.messages;
    assert.deepEqual(
      scoreMsgs.map((m) => m.key),
      ['car-0001', 'car-0002'],
      'keyed by vehicle; partial and dead-lettered windows have no score',
    );
    const scores = await scoresIn(fake.sent[0]!);
    const alert = await alertsCodec.decode(fake.sent[0]!.topicMessages!.find((t) => t.topic === 'maintenance.alerts')!.messages[0]!.value as Buffer);
    const [normal, anomalous] = scores;
    assert.equal(normal!.anomalous, false);
    assert.equal(normal!.alert_id, null);
    assert.equal(anomalous!.anomalous, true);
    assert.equal(anomalous!.alert_id, alert.alert_id);
    assert.equal(anomalous!.alert_id, alertId({ vehicle_id: 'car-0002', window_start: 0, window_end: 10_000 }, 'pitwall-ae', '1'));
    assert.equal(anomalous!.score, alert.score);
    assert.deepEqual(
      anomalous!.contributors.map((c) => ({ ...c })),
      alert.contributors.map((c) => ({ ...c })),
    );
    assert.deepEqual(
      anomalous!.contributors.map((c) => c.sensor),
      ['coolant_temp', 'speed', 'throttle_pos'],
      'top 3 only',
    );
    assert.equal(anomalous!.contributors.length, 3);
    assert.deepEqual([anomalous!.model_name, anomalous!.model_version, anomalous!.threshold, anomalous!.scored_at], ['pitwall-ae', '1', 1, NOW]);
    assert.deepEqual([anomalous!.window_start, anomalous!.window_end], [0, 10_000]);
  });

  it('a sensor stuck for several windows alerts below the threshold, naming the sensor; a redelivery gets the same verdict', async () => {
    const { fake, featuresCodec, alertsCodec, scoresIn, scoring } = await setup();
    // Every sensor varies a little (min 0, max 0.01) except coolant_temp, frozen at 0.5 from window 30 on.
    const window = (k: number, frozen: boolean): Buffer => {
      const fields = featureFields(vectorWith({}));
      for (const name of SENSOR_NAMES) fields[`${name}_max`] = 0.01;
      if (frozen) Object.assign(fields, { coolant_temp_min: 0.5, coolant_temp_max: 0.5, coolant_temp_mean: 0.5, coolant_temp_last: 0.5 });
      return featuresCodec.encode({ vehicle_id: 'car-0001', window_start: k * 10_000, window_end: (k + 1) * 10_000, event_count: 10, ...fields });
    };
    const warm = WARMUP_MOVING;
    const messages = Array.from({ length: warm + 3 }, (_, k) => message(k, window(k, k >= warm)));
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    const scores = await scoresIn(fake.sent[0]!);
    assert.deepEqual(
      scores.map((s, k) => (s.anomalous ? k : -1)).filter((k) => k >= 0),
      [warm + 2],
      'the third frozen window',
    );
    const stuck = scores[warm + 2]!;
    assert.ok(stuck.score < stuck.threshold, 'the model alone sees nothing');
    assert.equal(stuck.contributors[0]!.sensor, 'coolant_temp');
    assert.equal(stuck.contributors[0]!.share, 1);
    assert.match(stuck.contributors[0]!.action, /^Stuck: reads exactly 0\.5 °C in 3 windows \(30 s\)/);
    const alertMsgs = fake.sent[0]!.topicMessages!.find((t) => t.topic === TOPICS.alerts)!.messages;
    assert.equal(alertMsgs.length, 1);
    const alert = await alertsCodec.decode(alertMsgs[0]!.value as Buffer);
    assert.equal(alert.alert_id, stuck.alert_id);
    assert.deepEqual(
      alert.contributors.map((c) => ({ ...c })),
      stuck.contributors.map((c) => ({ ...c })),
    );
    assert.equal(scoring.stats().counters[labelled(METRICS.stuckSensorWindows, { sensor: 'coolant_temp' })], 1);
    // The batch retried (e.g. after a failed send): the same window, the same alert.
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, [message(warm + 2, window(warm + 2, true))]));
    const again = await alertsCodec.decode(fake.sent[1]!.topicMessages!.find((t) => t.topic === TOPICS.alerts)!.messages[0]!.value as Buffer);
    assert.equal(again.alert_id, alert.alert_id);
  });

  it('partial windows (a car starting or stopping) are not scored, only counted and committed', async () => {
    const { fake, record, scoring } = await setup();
    // 10 s windows at 1 Hz and 80% coverage: 8 events are needed. Both would alert if scored.
    const messages = [
      message(7, record('car-0001', 0, { coolant_temp: 40 }, 1)),
      message(8, record('car-0002', 0, { coolant_temp: 40 }, 7)),
      message(9, record('car-0003', 0, { coolant_temp: 40 }, 8)),
    ];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 1, messages));
    const alerts = fake.sent[0]!.topicMessages!.find((t) => t.topic === 'maintenance.alerts')!.messages;
    assert.deepEqual(
      alerts.map((m) => m.key),
      ['car-0003'],
    );
    const scores = fake.sent[0]!.topicMessages!.find((t) => t.topic === 'vehicle.scores')!.messages;
    assert.deepEqual(
      scores.map((m) => m.key),
      ['car-0003'],
    );
    assert.equal(scoring.stats().counters[METRICS.windowsPartial], 2);
    assert.deepEqual(fake.calls.slice(-2), ['resolve:9', 'commit:10']);
  });

  it('chunks a large batch by batchSize, committing after each chunk', async () => {
    const { fake, record, predictCalls } = await setup({ batchSize: 2 });
    const messages = [0, 1, 2, 3, 4].map((i) => message(i, record(`car-000${i}`, 0, i === 3 ? { speed: 5 } : {})));
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    assert.equal(predictCalls(), 3);
    assert.deepEqual(
      fake.calls.filter((c) => c.startsWith('resolve') || c.startsWith('commit') || c === 'send'),
      ['send', 'resolve:1', 'commit:2', 'send', 'resolve:3', 'commit:4', 'send', 'resolve:4', 'commit:5'],
    );
  });

  it('a failed send fails the batch before any offset is resolved (at-least-once)', async () => {
    const { fake, record, scoring } = await setup();
    fake.state.sendError = new Error('broker gone');
    await assert.rejects(fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, [message(7, record('car-0001', 0, { speed: 9 }))])), /broker gone/);
    assert.ok(!fake.calls.some((c) => c.startsWith('resolve') || c.startsWith('commit')));
    assert.equal(scoring.stats().counters[METRICS.batchFailures], 1);
    assert.equal(scoring.stats().counters[METRICS.alertsProduced], 0);
  });

  it('a model taking a feature no features record carries: every window dead-lettered, naming it, as the generic decoder would', async () => {
    const features = [...FEATURE_NAMES.slice(0, -1), 'warp_core_mean'];
    const { fake, record, scoring } = await setup({ metadata: { features } });
    const messages = [message(30, record('car-0001', 0, { speed: 1 })), message(31, record('car-0002', 0, {}))];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    const dlq = fake.sent[0]!.topicMessages!.find((t) => t.topic === 'vehicle.features.dlq')!.messages;
    assert.deepEqual(
      dlq.map((m) => [String(m.headers![DLQ_HEADER.reason]), String(m.headers![DLQ_HEADER.message])]),
      [
        ['features.missing', 'feature warp_core_mean missing from record'],
        ['features.missing', 'feature warp_core_mean missing from record'],
      ],
    );
    assert.deepEqual(fake.calls.slice(-3), ['send', 'resolve:31', 'commit:32']);
    assert.equal(scoring.stats().counters[METRICS.windowsScored] ?? 0, 0);
  });

  it('a registry outage while decoding fails the batch instead of dead-lettering', async () => {
    const featuresSchema = await loadSchemaFile(defaultSchemasDir(), 'features', 1);
    const store: SchemaStore = {
      setCompatibility: async () => {},
      register: async () => 1,
      lookup: async () => 1,
      getSchema: async () => {
        throw new TransientError('registry.get', 'registry unreachable');
      },
    };
    const { fake, featuresCodec } = await setup({ store });
    // Written with schema id 99, which the codec must fetch from the (unreachable) registry.
    const other = await createAvroCodec<FeatureRecord>(
      { setCompatibility: async () => {}, register: async () => 99, lookup: async () => 99, getSchema: async () => featuresSchema },
      'x',
      featuresSchema,
    );
    const body = other.encode({ vehicle_id: 'car-0001', window_start: 0, window_end: 10_000, event_count: 10, ...featureFields(vectorWith({})) });
    assert.ok(featuresCodec);
    await assert.rejects(fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, [message(1, body)])), /registry unreachable/);
    assert.deepEqual(fake.sent, []);
    assert.ok(!fake.calls.some((c) => c.startsWith('resolve')));
  });

  it('a shadow model scores the same windows; its results are only counted, after the send, never produced', async () => {
    const shadow = createShadowScorer({ model: 'pitwall-ae', instance: 't', log: silentLogger, counters: createCounters(), now: () => NOW });
    // Same predictions (0), threshold 0.5 instead of 1: alerts on more windows than the active model.
    shadow.offer({ model: linearModel(0, 0), metadata: metadataFor({ name: 'pitwall-ae', version: '2', threshold: 0.5 }), dir: '/models/pitwall-ae/2' }, () => undefined);
    const { fake, record, scoring, scoresIn } = await setup({ shadow });
    // Scores 0, 96/108 (shadow only), 120/108 (both), 6/108 (neither).
    const messages = [
      message(0, record('car-0001', 0, {})),
      message(1, record('car-0002', 0, { coolant_temp: 4 })),
      message(2, record('car-0003', 0, { coolant_temp: 4, speed: 2 })),
      message(3, record('car-0004', 0, { speed: 1 })),
    ];
    fake.state.sendError = new Error('broker gone');
    await assert.rejects(fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages)));
    assert.deepEqual(shadow.takeReports(NOW), [], 'a chunk that was not produced is not counted');
    fake.state.sendError = undefined;
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    const batch = fake.sent[0]!;
    const alerts = batch.topicMessages!.find((t) => t.topic === 'maintenance.alerts')!.messages;
    assert.deepEqual(
      alerts.map((m) => m.key),
      ['car-0003'],
      'only the active model alerts',
    );
    const scores = await scoresIn(batch);
    assert.deepEqual([...new Set(scores.map((s) => s.model_version))], ['1'], 'only the active model is in vehicle.scores');
    assert.equal(scores.length, 4);
    const [report] = shadow.takeReports(NOW + 1);
    assert.deepEqual(report!.agreement, { both: 1, active_only: 0, shadow_only: 1, neither: 2, ratio: 0.75 });
    assert.deepEqual([report!.active.version, report!.shadow.version], ['1', '2']);
    assert.deepEqual(scoring.stats().shadow, { name: 'pitwall-ae', version: '2', threshold: 0.5 });
    shadow.dispose();
  });

  it('every scored window feeds drift with its raw features; drift metrics appear on the registry', async () => {
    const metrics = createMetricsRegistry({ processMetrics: false });
    const drift = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 10, instance: 't', log: silentLogger, metrics, now: () => NOW });
    // Training: every feature at or below 3 half of the time; std 10 so that scaled values would all fall below.
    const reference = { bins: 2, method: 'test', features: FEATURE_NAMES.map(() => ({ edges: [3], proportions: [0.5, 0.5] })) };
    const normalization = { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 10) };
    const { fake, record } = await setup({ drift, metadata: { drift: reference, normalization, threshold: 1e9 } });
    const messages = [message(0, record('car-0001', 0, { coolant_temp: 4 })), message(1, record('car-0002', 0, { coolant_temp: 4 })), message(2, record('car-0003', 0, {}, 1))];
    await fake.state.runConfig!.eachBatch!(payloadFor(fake.calls, 0, messages));
    const [fleet] = drift.fleet(NOW);
    assert.equal(fleet!.windows, 2, 'the partial window is not scored, so not counted');
    assert.deepEqual(fleet!.counts![FEATURE_NAMES.indexOf('coolant_temp_mean')], [0, 2], 'raw 4 > 3: counted before scaling');
    assert.deepEqual(fleet!.counts![FEATURE_NAMES.indexOf('speed_mean')], [2, 0]);
    const text = await metrics.metrics();
    assert.match(text, /pitwall_scoring_drift_psi\{model="pitwall-ae",role="active",feature="coolant_temp_mean"\} 4\.\d+/);
    assert.match(text, /pitwall_scoring_drift_significant_features\{model="pitwall-ae",role="active"\} 108/);
  });

  it('ready() follows group membership and crashes; close() disconnects once', async () => {
    const { fake, scoring } = await setup();
    assert.equal(scoring.ready(), false);
    fake.emit('consumer.group_join', {});
    assert.equal(scoring.ready(), true);
    fake.emit('consumer.crash', { error: new Error('x'), groupId: 'g', restart: true });
    assert.equal(scoring.ready(), false);
    fake.emit('consumer.group_join', {});
    assert.equal(scoring.ready(), true);
    fake.emit('consumer.crash', { error: new Error('fatal'), groupId: 'g', restart: false });
    fake.emit('consumer.group_join', {});
    assert.equal(scoring.ready(), false);
    await scoring.close();
    await scoring.close();
    assert.deepEqual(
      fake.calls.filter((c) => c.endsWith('disconnect') && !c.startsWith('admin')),
      ['consumer.disconnect', 'producer.disconnect'],
    );
  });
});
