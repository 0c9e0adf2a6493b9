/**
 * Every Kafka send stays under the broker's limits (services/common/src/send.ts), on the real broker
 * with the services as processes. Before, a send whose records for one partition exceeded the
 * topic's max.message.bytes failed with the non-retriable MESSAGE_TOO_LARGE and was retried forever:
 *  1. ingest: a burst of 400 payloads of ~9.6 KB (dead-lettered as payload.too_large with their
 *     raw bytes) all reach the DLQ, the valid readings around them reach the telemetry topic, and
 *     ingest stops on SIGTERM within seconds (it hung until the shutdown timeout);
 *  2. windowing: 5,000 cars whose windows all close at the same boundary on 3 partitions (a closing
 *     batch holds ~1,667 features, over 1.5 MB, per window period and partition): every window is
 *     emitted exactly once;
 *  3. incidents with max.message.bytes = 16384 on its topic: the limit is read from the broker and
 *     a batch opening 400 incidents (~35 KB per partition) is written in chunks in its transaction;
 *  4. a single record larger than the limit: an incident record grown past it goes to the DLQ
 *     as record.too_large, truncated, with its original size; a payload dead letter larger than the
 *     DLQ's limit is truncated further; the services keep going;
 *  5. a limit lowered while running: refused sends halve the budget; ingest re-splits on a fresh
 *     producer session (nothing lost), incidents aborts and redoes the transaction (exactly once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import {
  connectMqtt,
  createAvroCodec,
  defaultSchemasDir,
  DLQ_HEADER,
  ensureTopics,
  loadSchemaFile,
  SENSORS,
  silentLogger,
  TOO_LARGE_HEADER,
  type IncidentRecord,
  type ScoreRecord,
  type TelemetryRecord,
} from '@pitwall/common';
import { collect as collectTopic, windowScore } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

const PARTITIONS = 3;
const SCHEMAS = defaultSchemasDir();
const kafka = new Kafka({ clientId: 'e2e-bounded-sends', ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
const store = adminSchemaStore();

async function createTopics(specs: { topic: string; configEntries?: Record<string, string> }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, specs, { partitions: PARTITIONS });
  } finally {
    await admin.disconnect();
  }
}

/** Reads a topic's raw records read_committed from the beginning while the test runs. */
const collect = (topic: string) => collectTopic(kafka, { topic, decode: (value: Buffer) => value, readUncommitted: false, maxWaitTimeInMs: 200 });

/** JSON log lines of a service whose `msg` is `msg`. */
function logLines(svc: ServiceProcess, msg: string): Record<string, unknown>[] {
  return readFileSync(svc.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

function reading(ts: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const r: Record<string, unknown> = { ts };
  for (const s of SENSORS) r[s.name] = s.kind === 'int' ? 230 : 12.5;
  return { ...r, ...extra };
}

async function stopWithin(svc: ServiceProcess, ms: number): Promise<{ code: number | null; tookMs: number }> {
  const started = Date.now();
  const code = await Promise.race([svc.stop(), new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);
  const tookMs = Date.now() - started;
  assert.notEqual(code, 'hung', `${svc.name} did not exit within ${ms} ms of SIGTERM (log: ${svc.logFile})`);
  return { code: code as number | null, tookMs };
}

test('ingest: a burst of 400 oversized payloads all reach the DLQ, the readings around them flow on, SIGTERM exits at once', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const env = isolatedEnv(id);
  const vehicle = `burst-${id}`;
  let ingest: ServiceProcess | undefined;
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-burst-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  try {
    ingest = await startService('ingest', env, `bounded-ingest-${id}`);
    await waitReady([ingest]);
    const telemetry = await collect(env.TOPIC_TELEMETRY);
    const dlq = await collect(env.TOPIC_TELEMETRY_DLQ);
    try {
      const topic = `vehicles/${vehicle}/telemetry`;
      const t0 = Date.now() - 60_000;
      const publish = (payload: string) => publisher.publishAsync(topic, payload, { qos: 1 });
      for (let i = 0; i < 10; i++) await publish(JSON.stringify(reading(t0 + i * 1000)));
      // ~9.6 KB each: over INGEST_MAX_PAYLOAD_BYTES (8 KiB), so dead-lettered with the raw bytes; ~3.9 MB in all.
      const big = Array.from({ length: 400 }, (_, i) => JSON.stringify(reading(t0 + 20_000 + i, { note: `${i}:`.padEnd(9_000, 'x') })));
      // Ingest is frozen while the burst is published, so all 400 reach it at once however fast
      // this machine publishes (the broker queues them for its session meanwhile).
      const burstStart = Date.now();
      ingest.proc.kill('SIGSTOP');
      try {
        await Promise.all(big.map(publish));
      } finally {
        ingest.proc.kill('SIGCONT');
      }
      const burstMs = Date.now() - burstStart;
      for (let i = 0; i < 10; i++) await publish(JSON.stringify(reading(t0 + 30_000 + i * 1000)));
      t.diagnostic(`published 10 readings, 400 payloads of ${big[0]!.length} bytes within ${burstMs} ms (ingest frozen meanwhile), 10 readings`);

      const tooLarge = () => dlq.records.filter((r) => r.headers[DLQ_HEADER.reason] === 'payload.too_large');
      await Promise.all([dlq.waitFor(() => tooLarge().length >= 400, 45_000, '400 dead letters'), telemetry.waitFor(20, 45_000, '20 readings')]).catch((err: Error) => {
        throw new Error(`${err.message}: ${tooLarge().length} dead letters, ${telemetry.records.length} readings (log: ${ingest!.logFile})`);
      });
      const payloads = new Set(tooLarge().map((r) => r.value.toString()));
      assert.equal(payloads.size, 400, 'every oversized payload, with its raw bytes');
      for (const p of big) assert.ok(payloads.has(p));
      assert.ok(
        tooLarge().every((r) => r.key === vehicle && r.headers[TOO_LARGE_HEADER.truncated] === undefined),
        'keyed by vehicle, not truncated',
      );
      t.diagnostic(`DLQ: ${tooLarge().length} payload.too_large records (${dlq.records.length} in all); telemetry: ${telemetry.records.length} readings`);
    } finally {
      await telemetry.stop();
      await dlq.stop();
    }
    const { code, tookMs } = await stopWithin(ingest, 8_000);
    t.diagnostic(`ingest exited with ${code} ${tookMs} ms after SIGTERM`);
    assert.equal(code, 0);
  } finally {
    await ingest?.kill();
    await publisher.endAsync();
  }
});

test('windowing: 5,000 cars closing their windows at the same boundary, every window emitted exactly once', { timeout: 240_000 }, async (t) => {
  const id = runId();
  const env = { ...isolatedEnv(id), TOPIC_PARTITIONS: String(PARTITIONS), WINDOWING_IDLE_MS: '0' };
  const VEHICLES = 5_000;
  const W = 10_000;
  await createTopics([{ topic: env.TOPIC_TELEMETRY }]);
  const telemetryCodec = await createAvroCodec<TelemetryRecord>(store, `${env.TOPIC_TELEMETRY}-value`, await loadSchemaFile(SCHEMAS, 'telemetry', 1));
  const t0 = Math.floor(Date.now() / W) * W - 600_000;
  const rec = (v: number, ts: number): TelemetryRecord => {
    const r: TelemetryRecord = { vehicle_id: `fleet-${id}-${v}`, ts, out_of_range: [], received_at: ts };
    SENSORS.forEach((s, j) => (r[s.name] = s.kind === 'int' ? 200 + (v % 50) : (v % 97) + j + ts / 1e12));
    return r;
  };
  // Three rounds, each one record batch per partition: a reading of every car in window 1, then
  // one in window 2 (closes window 1 of every car), then one in window 3 (closes window 2).
  const producer = kafka.producer();
  await producer.connect();
  for (const ts of [t0 + 1_000, t0 + W + 3_000, t0 + 2 * W + 5_000]) {
    await producer.send({ topic: env.TOPIC_TELEMETRY, acks: -1, messages: Array.from({ length: VEHICLES }, (_, v) => ({ key: `fleet-${id}-${v}`, value: telemetryCodec.encode(rec(v, ts)) })) });
  }
  await producer.disconnect();

  const featuresCodec = await createAvroCodec<Record<string, unknown>>(store, `${env.TOPIC_FEATURES}-value`, await loadSchemaFile(SCHEMAS, 'features', 1));
  await createTopics([{ topic: env.TOPIC_FEATURES }]);
  const features = await collect(env.TOPIC_FEATURES);
  let windowing: ServiceProcess | undefined;
  try {
    const started = Date.now();
    windowing = await startService('windowing', env, `bounded-windowing-${id}`);
    await waitReady([windowing]);
    await features
      .waitFor((rs) => rs.length >= 2 * VEHICLES && features.quietFor() > 3000, 150_000, `${2 * VEHICLES} feature records`)
      .catch((err: Error) => {
        throw new Error(`${err.message}: got ${features.records.length} (log: ${windowing!.logFile})`);
      });
    const tookMs = Date.now() - started - 3000;
    const seen = new Map<string, number>();
    const perWindow = new Map<number, number>();
    for (const r of features.records) {
      const f = await featuresCodec.decode(r.value);
      const key = `${String(f.vehicle_id)}|${String(f.window_start)}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      perWindow.set(Number(f.window_start), (perWindow.get(Number(f.window_start)) ?? 0) + 1);
    }
    const splits = logLines(windowing, 'send split to stay under the byte budget');
    const budget = logLines(windowing, 'send budget')[0];
    t.diagnostic(`${features.records.length} feature records in ${tookMs} ms from start; per window: ${[...perWindow].map(([s, n]) => `${(s - t0) / 1000}s=${n}`).join(', ')}`);
    t.diagnostic(`send budget ${budget?.budget} bytes; ${splits.length} transactions split: ${splits.map((s) => `${s.records} records in ${s.chunks} sends (${s.ms} ms)`).join('; ')}`);
    t.diagnostic(
      `refused sends: ${logLines(windowing, 'broker refused a send as too large: budget halved').length}, aborted transactions: ${logLines(windowing, 'transaction aborted; partition resumes from its last commit').length}`,
    );
    assert.deepEqual([...perWindow.keys()].sort(), [t0, t0 + W], 'windows 1 and 2 closed, window 3 still open');
    assert.equal(perWindow.get(t0), VEHICLES);
    assert.equal(perWindow.get(t0 + W), VEHICLES);
    assert.equal(seen.size, 2 * VEHICLES);
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'no window twice',
    );
    assert.ok(splits.length >= PARTITIONS, 'the closing batches were split');
    const { code } = await stopWithin(windowing, 20_000);
    assert.equal(code, 0);
  } finally {
    await windowing?.kill();
    await features.stop();
  }
});

/** An anomalous score (1.5 times the threshold) of window i of a vehicle. */
const score = (vehicle: string, i: number): ScoreRecord => windowScore(vehicle, i, { ratio: 1.5 });

/** The incidents service on topics whose incidents topic takes at most 16 KiB per batch. */
async function incidentsWithSmallLimit(id: string) {
  const env = { ...isolatedEnv(id), TOPIC_PARTITIONS: String(PARTITIONS) };
  const dlqTopic = `${env.TOPIC_INCIDENTS}.dlq`;
  await createTopics([
    { topic: env.TOPIC_SCORES },
    { topic: env.TOPIC_INCIDENT_COMMANDS },
    { topic: env.TOPIC_RECEIPTS },
    { topic: env.TOPIC_INCIDENTS, configEntries: { 'cleanup.policy': 'compact', 'max.message.bytes': '16384' } },
    { topic: dlqTopic },
  ]);
  const codecs = {
    score: await createAvroCodec<ScoreRecord>(store, `${env.TOPIC_SCORES}-value`, await loadSchemaFile(SCHEMAS, 'score', 1)),
    command: await createAvroCodec<Record<string, unknown>>(store, `${env.TOPIC_INCIDENT_COMMANDS}-value`, await loadSchemaFile(SCHEMAS, 'incident-command', 1)),
    incident: await createAvroCodec<IncidentRecord>(store, `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(SCHEMAS, 'incident', 1)),
  };
  return { env, dlqTopic, codecs };
}

test('incidents: max.message.bytes 16384 on its topic is read from the broker; 1,200 incidents opened in three batches are all written', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const { env, codecs } = await incidentsWithSmallLimit(id);
  // ~400 scores per input partition open ~130 incidents per incidents partition (~35 KB) in one transaction.
  const VEHICLES = 1200;
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: env.TOPIC_SCORES, acks: -1, messages: Array.from({ length: VEHICLES }, (_, v) => ({ key: `car-${id}-${v}`, value: codecs.score.encode(score(`car-${id}-${v}`, 0)) })) });
  await producer.disconnect();
  const out = await collect(env.TOPIC_INCIDENTS);
  let svc: ServiceProcess | undefined;
  try {
    svc = await startService('incidents', env, `bounded-incidents-${id}`);
    await waitReady([svc]);
    await out
      .waitFor((rs) => rs.length >= VEHICLES && out.quietFor() > 2000, 90_000, `${VEHICLES} incidents`)
      .catch((err: Error) => {
        throw new Error(`${err.message}: got ${out.records.length} (log: ${svc!.logFile})`);
      });
    const incidents = await Promise.all(out.records.map((r) => codecs.incident.decode(r.value)));
    const budget = logLines(svc, 'send budget')[0]!;
    const splits = logLines(svc, 'send split to stay under the byte budget');
    const refused = logLines(svc, 'broker refused a send as too large: budget halved');
    t.diagnostic(
      `${incidents.length} incident records; send budget ${budget.budget} (topic limit ${budget.topicLimit}); ${splits.length} transactions split into ${splits.map((s) => s.chunks).join(', ')} sends; refused sends: ${refused.length}`,
    );
    assert.equal(budget.topicLimit, 16384, 'the limit comes from the broker');
    assert.ok((budget.budget as number) < 16384);
    assert.equal(refused.length, 0, 'no send was refused: the limit was respected from the start');
    assert.ok(splits.length > 0);
    assert.equal(new Set(incidents.map((r) => r.vehicle_id)).size, VEHICLES);
    assert.ok(incidents.every((r) => r.revision === 1 && r.last_change === 'OPENED'));
    assert.equal(incidents.length, VEHICLES, 'each exactly once');
    const { code } = await stopWithin(svc, 20_000);
    assert.equal(code, 0);
  } finally {
    await svc?.kill();
    await out.stop();
  }
});

test('a single record over the limit: dead-lettered as record.too_large, truncated, with its original size; the service keeps going', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const { env, dlqTopic, codecs } = await incidentsWithSmallLimit(id);
  const out = await collect(env.TOPIC_INCIDENTS);
  const dlq = await collect(dlqTopic);
  const producer = kafka.producer();
  await producer.connect();
  let svc: ServiceProcess | undefined;
  try {
    svc = await startService('incidents', env, `bounded-incidents-large-${id}`);
    await waitReady([svc]);
    const car = `car-${id}-a`;
    await producer.send({ topic: env.TOPIC_SCORES, acks: -1, messages: [{ key: car, value: codecs.score.encode(score(car, 0)) }] });
    const opened = await codecs.incident.decode((await out.waitFor(1, 60_000, 'the incident'))[0]!.value);
    // An operator's 40,000-character note makes the acknowledged incident record ~40 KB.
    const note = 'n'.repeat(40_000);
    const command = { command_id: `${id}-ack`, incident_id: opened.incident_id, vehicle_id: car, action: 'ACKNOWLEDGE', operator: 'e2e', note, issued_at: Date.now() };
    await producer.send({ topic: env.TOPIC_INCIDENT_COMMANDS, acks: -1, messages: [{ key: car, value: codecs.command.encode(command) }] });
    const dead = await dlq
      .waitFor((rs) => rs.find((r) => r.headers[DLQ_HEADER.reason] === 'record.too_large'), 60_000, 'the dead letter')
      .catch((err: Error) => {
        throw new Error(`${err.message} (log: ${svc!.logFile})`);
      });
    const originalSize = Number(dead.headers[TOO_LARGE_HEADER.originalSize]);
    t.diagnostic(`dead letter: ${dead.value.length} bytes of an original ${originalSize}, truncated=${dead.headers[TOO_LARGE_HEADER.truncated]}, meant for ${dead.headers[TOO_LARGE_HEADER.topic]}`);
    assert.ok(originalSize > 40_000, 'the original size is recorded');
    assert.equal(dead.headers[TOO_LARGE_HEADER.truncated], 'true');
    assert.equal(dead.headers[TOO_LARGE_HEADER.topic], env.TOPIC_INCIDENTS);
    assert.equal(dead.headers[DLQ_HEADER.service], 'incidents');
    assert.equal(dead.key, opened.incident_id);
    assert.ok(dead.value.length > 1000 && dead.value.length < 16384, 'truncated to fit');
    assert.ok(dead.value.includes(Buffer.from(opened.incident_id)), 'a prefix of the Avro record');

    // The service goes on: the next car's incident is written.
    const next = `car-${id}-b`;
    await producer.send({ topic: env.TOPIC_SCORES, acks: -1, messages: [{ key: next, value: codecs.score.encode(score(next, 0)) }] });
    await waitFor(
      'the next incident',
      async () => {
        for (const r of out.records) if ((await codecs.incident.decode(r.value)).vehicle_id === next) return true;
        return undefined;
      },
      60_000,
    );
    t.diagnostic(`incidents written: ${out.records.length}; dead letters: ${dlq.records.length}`);
    assert.equal(dlq.records.length, 1);
    assert.ok(await svc.ready(), 'still ready');
    const { code } = await stopWithin(svc, 20_000);
    assert.equal(code, 0);
  } finally {
    await svc?.kill();
    await producer.disconnect();
    await out.stop();
    await dlq.stop();
  }
});

test('a dead letter larger than the DLQ topic allows is truncated further; ingest keeps going', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const env = isolatedEnv(id);
  const vehicle = `huge-${id}`;
  await createTopics([{ topic: env.TOPIC_TELEMETRY_DLQ, configEntries: { 'max.message.bytes': '16384' } }]);
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-huge-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  let ingest: ServiceProcess | undefined;
  try {
    ingest = await startService('ingest', env, `bounded-ingest-huge-${id}`);
    await waitReady([ingest]);
    const telemetry = await collect(env.TOPIC_TELEMETRY);
    const dlq = await collect(env.TOPIC_TELEMETRY_DLQ);
    try {
      const topic = `vehicles/${vehicle}/telemetry`;
      const t0 = Date.now() - 30_000;
      const huge = JSON.stringify(reading(t0, { note: 'h'.repeat(40_000) }));
      await publisher.publishAsync(topic, huge, { qos: 1 });
      for (let i = 0; i < 5; i++) await publisher.publishAsync(topic, JSON.stringify(reading(t0 + 1000 + i * 1000)), { qos: 1 });
      await Promise.all([dlq.waitFor(1, 45_000, 'the dead letter'), telemetry.waitFor(5, 45_000, '5 readings')]).catch((err: Error) => {
        throw new Error(`${err.message}: ${dlq.records.length} dead letters, ${telemetry.records.length} readings (log: ${ingest!.logFile})`);
      });
      const [dead] = dlq.records;
      t.diagnostic(
        `payload of ${huge.length} bytes: dead letter of ${dead!.value.length} bytes, original_size ${dead!.headers[TOO_LARGE_HEADER.originalSize]}; readings after it: ${telemetry.records.length}`,
      );
      assert.equal(dead!.headers[DLQ_HEADER.reason], 'payload.too_large', 'still the payload reason');
      assert.equal(dead!.headers[TOO_LARGE_HEADER.truncated], 'true');
      assert.equal(dead!.headers[TOO_LARGE_HEADER.originalSize], String(huge.length));
      assert.ok(dead!.value.length < 16384);
      assert.equal(dead!.value.toString(), huge.slice(0, dead!.value.length), 'a prefix of the raw bytes');
    } finally {
      await telemetry.stop();
      await dlq.stop();
    }
    const { code } = await stopWithin(ingest, 8_000);
    assert.equal(code, 0);
  } finally {
    await ingest?.kill();
    await publisher.endAsync();
  }
});

/** Sets topic configs (kafkajs's alterConfigs replaces them all, so give every override). */
async function setTopicConfig(topic: string, entries: Record<string, string>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: topic, configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })) }] });
  } finally {
    await admin.disconnect();
  }
}

test('a limit lowered while ingest runs: refused sends are halved and re-split on a fresh producer session, nothing lost', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const env = isolatedEnv(id);
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-lowered-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  let ingest: ServiceProcess | undefined;
  try {
    ingest = await startService('ingest', env, `bounded-ingest-lowered-${id}`);
    await waitReady([ingest]);
    // Read at start: ~1 MB. Now the DLQ takes 16 KiB per batch.
    await setTopicConfig(env.TOPIC_TELEMETRY_DLQ, { 'max.message.bytes': '16384' });
    const dlq = await collect(env.TOPIC_TELEMETRY_DLQ);
    try {
      const t0 = Date.now() - 60_000;
      // 40 cars on all partitions: a refused request can have written some partitions and not others.
      const big = Array.from({ length: 400 }, (_, i) => ({ topic: `vehicles/low-${id}-${i % 40}/telemetry`, payload: JSON.stringify(reading(t0 + i, { note: `${i}:`.padEnd(9_000, 'x') })) }));
      await Promise.all(big.map((b) => publisher.publishAsync(b.topic, b.payload, { qos: 1 })));
      const distinct = () => new Set(dlq.records.map((r) => r.value.toString()));
      await dlq
        .waitFor(() => distinct().size >= 400, 60_000, '400 distinct dead letters')
        .catch((err: Error) => {
          throw new Error(`${err.message}: ${distinct().size} (log: ${ingest!.logFile})`);
        });
      const refused = logLines(ingest, 'broker refused a send as too large: budget halved');
      t.diagnostic(`400 payloads: ${dlq.records.length} DLQ records, ${distinct().size} distinct; ${refused.length} refused sends, budget ${refused.map((r) => r.budget).join(' -> ')}`);
      assert.ok(refused.length > 0, 'the broker did refuse');
      // Whole, or (when the halved budget is below one such record) truncated with its original size.
      const kept = (b: { payload: string }): boolean =>
        dlq.records.some(
          (r) =>
            r.value.toString() === b.payload ||
            (r.headers['pitwall.dlq.truncated'] === 'true' && r.headers['pitwall.dlq.original_size'] === String(Buffer.byteLength(b.payload)) && b.payload.startsWith(r.value.toString())),
        );
      for (const b of big) assert.ok(kept(b), `payload ${b.payload.slice(0, 60)}... not in the DLQ, whole or truncated`);
    } finally {
      await dlq.stop();
    }
    const { code } = await stopWithin(ingest, 8_000);
    assert.equal(code, 0);
  } finally {
    await ingest?.kill();
    await publisher.endAsync();
  }
});

test('a limit lowered while incidents runs: the transaction is aborted and redone with a halved budget, every incident exactly once', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const env = { ...isolatedEnv(id), TOPIC_PARTITIONS: String(PARTITIONS) };
  await createTopics([
    { topic: env.TOPIC_SCORES },
    { topic: env.TOPIC_INCIDENT_COMMANDS },
    { topic: env.TOPIC_RECEIPTS },
    { topic: env.TOPIC_INCIDENTS, configEntries: { 'cleanup.policy': 'compact' } },
    { topic: `${env.TOPIC_INCIDENTS}.dlq` },
  ]);
  const scoreCodec = await createAvroCodec<ScoreRecord>(store, `${env.TOPIC_SCORES}-value`, await loadSchemaFile(SCHEMAS, 'score', 1));
  const incidentCodec = await createAvroCodec<IncidentRecord>(store, `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(SCHEMAS, 'incident', 1));
  const out = await collect(env.TOPIC_INCIDENTS);
  let svc: ServiceProcess | undefined;
  try {
    svc = await startService('incidents', env, `bounded-incidents-lowered-${id}`);
    await waitReady([svc]);
    await setTopicConfig(env.TOPIC_INCIDENTS, { 'cleanup.policy': 'compact', 'max.message.bytes': '16384' });
    const VEHICLES = 1200;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: env.TOPIC_SCORES, acks: -1, messages: Array.from({ length: VEHICLES }, (_, v) => ({ key: `low-${id}-${v}`, value: scoreCodec.encode(score(`low-${id}-${v}`, 0)) })) });
    await producer.disconnect();
    await out
      .waitFor((rs) => rs.length >= VEHICLES && out.quietFor() > 3000, 120_000, `${VEHICLES} incidents`)
      .catch((err: Error) => {
        throw new Error(`${err.message}: got ${out.records.length} (log: ${svc!.logFile})`);
      });
    const incidents = await Promise.all(out.records.map((r) => incidentCodec.decode(r.value)));
    const refused = logLines(svc, 'broker refused a send as too large: budget halved');
    const aborted = logLines(svc, 'transaction aborted; partition resumes from its last commit');
    t.diagnostic(`${incidents.length} incident records; ${refused.length} refused sends (budget ${refused.map((r) => r.budget).join(' -> ')}), ${aborted.length} aborted transactions`);
    assert.ok(refused.length > 0 && aborted.length > 0, 'the broker did refuse, and the transaction was redone');
    assert.equal(incidents.length, VEHICLES, 'exactly once: the aborted attempts left nothing behind');
    assert.equal(new Set(incidents.map((r) => r.vehicle_id)).size, VEHICLES);
    const { code } = await stopWithin(svc, 20_000);
    assert.equal(code, 0);
  } finally {
    await svc?.kill();
    await out.stop();
  }
});
