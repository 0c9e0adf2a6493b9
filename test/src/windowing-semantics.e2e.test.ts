/**
 * Windowing semantics on the real broker and registry: out-of-order events within the grace period,
 * duplicates, a late event (to the late topic, with the window it missed), ignition off closing a
 * vehicle's window at once, and telemetry v1 and v2 producers side by side on one topic, with the
 * registry enforcing backward compatibility of the subject.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { computeFeatures, createAvroCodec, defaultSchemasDir, featureFields, loadSchemaFile, SENSORS, type TelemetryRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, kafkaClientConfig, runId, startService, waitReady } from './support/stack.js';

test('out of order, duplicates, late events, ignition off, and v1 + v2 producers side by side', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const topics = {
    input: `e2e.${id}.sem.telemetry`,
    features: `e2e.${id}.sem.features`,
    late: `e2e.${id}.sem.late`,
  };
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();

  const store = adminSchemaStore();
  const subject = `${topics.input}-value`;
  const v1 = await createAvroCodec<TelemetryRecord>(store, subject, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1), { compatibility: 'BACKWARD' });
  const v2 = await createAvroCodec<TelemetryRecord>(store, subject, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  assert.notEqual(v1.schemaId, v2.schemaId, 'v2 is a new registered version of the subject');
  const breaking = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2);
  (breaking as { fields: unknown[] }).fields.push({ name: 'vin', type: 'string' }); // no default: old data unreadable
  await assert.rejects(store.register(subject, breaking), /registering/, 'the registry refuses a backward-incompatible version');

  const T = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
  const values = (ts: number): number[] => SENSORS.map((s, i) => (s.kind === 'int' ? 220 + i : ((ts / 1000) % 17) + i * 0.5));
  const rec = (vehicle: string, ts: number, ignition?: boolean): TelemetryRecord => {
    const r: TelemetryRecord = { vehicle_id: vehicle, ts, out_of_range: [], received_at: ts };
    values(ts).forEach((v, i) => (r[SENSORS[i]!.name] = v));
    if (ignition !== undefined) r.ignition_on = ignition;
    return r;
  };
  const producer = kafka.producer();
  await producer.connect();
  const send = (items: Buffer[]) => producer.send({ topic: topics.input, acks: -1, messages: items.map((value) => ({ key: 'k', value })) });

  const ws = await startService(
    'windowing',
    {
      TOPIC_TELEMETRY: topics.input,
      TOPIC_FEATURES: topics.features,
      TOPIC_TELEMETRY_LATE: topics.late,
      TOPIC_TELEMETRY_DLQ: `e2e.${id}.sem.dlq`,
      WINDOWING_GROUP_ID: `e2e.${id}.sem`,
      WINDOWING_TRANSACTIONAL_ID_PREFIX: `e2e.${id}.sem`,
      WINDOW_SIZE_MS: '10000',
      WINDOW_GRACE_MS: '2000',
    },
    `sem-${id}`,
  );
  await waitReady([ws]);

  const featuresCodec = await createAvroCodec<Record<string, unknown>>(store, `${topics.features}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
  // Plain objects: deepEqual compares prototypes, and avsc decodes to instances of its own classes.
  const featuresReader = await collect(kafka, { topic: topics.features, decode: async (v: Buffer) => ({ ...(await featuresCodec.decode(v)) }) });
  const lateReader = await collect(kafka, { topic: topics.late, decode: v2 });
  const features = (): Record<string, unknown>[] => featuresReader.values();

  // Phase 1: window [T, T+10s). car-v1 (v1 writer) out of order with a redelivered duplicate;
  // car-v2 (v2 writer) reports ignition on, then off at T+6s.
  const v1Order = [0, 3, 1, 2, 5, 4, 4, 6, 9, 7, 8];
  await send([
    ...v1Order.map((s) => v1.encode(rec('car-v1', T + s * 1000))),
    ...[0, 1, 2, 3, 4, 5].map((s) => v2.encode(rec('car-v2', T + s * 1000 + 500, true))),
    v2.encode(rec('car-v2', T + 6_500, false)),
  ]);
  const v2Window = await featuresReader.waitFor(() => features().find((f) => f.vehicle_id === 'car-v2'), 30_000, 'car-v2 window closed by ignition off');
  assert.equal(v2Window.event_count, 7);
  assert.equal(v2Window.window_start, T);
  assert.equal(features().filter((f) => f.vehicle_id === 'car-v1').length, 0, 'car-v1 waits for the watermark (T+9s < end + grace)');

  // Phase 2: the watermark passes T+12s: car-v1's window closes. Then a late event, then more.
  await send([v1.encode(rec('car-v1', T + 12_500))]);
  const v1Window = await featuresReader.waitFor(() => features().find((f) => f.vehicle_id === 'car-v1' && f.window_start === T), 30_000, 'car-v1 window');
  await send([v1.encode(rec('car-v1', T + 1_500)), v2.encode(rec('car-v2', T + 7_000, true))]);
  const late = await lateReader.waitFor(2, 30_000, 'two late events');
  await featuresReader.stop();
  await lateReader.stop();
  await producer.disconnect();
  assert.equal(await ws.stop(), 0);

  const expectV1 = computeFeatures([...new Set(v1Order)].map((s) => ({ ts: T + s * 1000, values: values(T + s * 1000) })));
  assert.deepEqual(v1Window, { vehicle_id: 'car-v1', window_start: T, window_end: T + 10_000, event_count: 10, ...featureFields(expectV1) }, 'duplicates counted once; order irrelevant');
  assert.equal(features().filter((f) => f.vehicle_id === 'car-v1' && f.window_start === T).length, 1, 'emitted once');
  const byTs = new Map(late.map((l) => [l.value.ts, l.headers]));
  const l1 = byTs.get(T + 1_500)!;
  assert.equal(l1['pitwall.late.reason'], 'window_closed');
  assert.equal(l1['pitwall.late.window_start'], String(T));
  assert.equal(l1['pitwall.late.window_end'], String(T + 10_000));
  assert.ok(byTs.has(T + 7_000), 'an event for a window closed by ignition off is late too');
  t.diagnostic(`features ${features().length}, late ${late.length}`);
});

test('a partition that goes quiet closes its open windows after the idle time', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const input = `e2e.${id}.idle.telemetry`;
  const featuresTopic = `e2e.${id}.idle.features`;
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [input, featuresTopic].map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  await admin.disconnect();
  const store = adminSchemaStore();
  const v2 = await createAvroCodec<TelemetryRecord>(store, `${input}-value`, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  const ws = await startService(
    'windowing',
    {
      TOPIC_TELEMETRY: input,
      TOPIC_FEATURES: featuresTopic,
      TOPIC_TELEMETRY_LATE: `e2e.${id}.idle.late`,
      TOPIC_TELEMETRY_DLQ: `e2e.${id}.idle.dlq`,
      WINDOWING_GROUP_ID: `e2e.${id}.idle`,
      WINDOWING_TRANSACTIONAL_ID_PREFIX: `e2e.${id}.idle`,
      WINDOWING_IDLE_MS: '1500',
    },
    `idle-${id}`,
  );
  await waitReady([ws]);
  const T = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: input,
    acks: -1,
    messages: [0, 1, 2, 3, 4].map((s) => {
      const r: TelemetryRecord = { vehicle_id: 'parked', ts: T + s * 1000, out_of_range: [], received_at: T, ignition_on: null };
      SENSORS.forEach((x, i) => (r[x.name] = x.kind === 'int' ? 230 : i + s));
      return { key: 'parked', value: v2.encode(r) };
    }),
  });
  await producer.disconnect();
  const sentAt = Date.now();

  const featuresCodec = await createAvroCodec<Record<string, unknown>>(store, `${featuresTopic}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
  const features = await collect(kafka, { topic: featuresTopic, decode: featuresCodec });
  // The input topic's control records (windowing's idle markers), raw: they carry no value.
  const controls = await collect(kafka, { topic: input, filter: (r) => r.headers['pitwall.control'] !== undefined });
  const [w] = await features.waitFor(1, 30_000, 'the parked car window, closed by idleness');
  t.diagnostic(`window emitted ${Date.now() - sentAt} ms after the last event (idle time 1500 ms)`);
  await controls.waitFor(1, 10_000, 'the idle marker in the log');
  await features.stop();
  await controls.stop();
  assert.equal(await ws.stop(), 0);
  assert.deepEqual([w!.value.vehicle_id, w!.value.window_start, w!.value.event_count], ['parked', T, 5]);
  assert.deepEqual(
    controls.records.map((r) => r.headers['pitwall.control']),
    ['idle'],
    'one marker: afterwards nothing is open',
  );
});
