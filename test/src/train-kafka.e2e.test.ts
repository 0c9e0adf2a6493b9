/**
 * `npm run train -- --from-kafka` against the real Kafka and registry: a small deterministic
 * telemetry history (simulator fleet, half the cars written with the telemetry v1 schema and half
 * with v2) goes to an isolated topic; training reads a time range of it. The new version directory
 * must load, its metadata must name exactly the range read (per partition offsets, record counts
 * and timestamps), and a second run with the same seed must give identical weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import * as tf from '@tensorflow/tfjs';
import { createAvroCodec, defaultSchemasDir, loadSchemaFile, windowDef } from '@pitwall/common';
import { loadModelDir } from '@pitwall/model';
import { createWindower } from '@pitwall/model-lab';
import { createFleet, type Reading } from '@pitwall/simulator';
import { adminSchemaStore, INFRA, kafkaClientConfig, kafkaIdentityEnv, REPO, runId } from './support/stack.js';

const run = promisify(execFile);

test('training from a Kafka telemetry range records the range and is reproducible', { timeout: 600_000 }, async (t) => {
  const id = runId();
  const topic = `e2e.${id}.train.telemetry`;
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  // Past timestamps (T0): no retention, or the broker may delete the segments mid-test (see replay.e2e).
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }], waitForLeaders: true });
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-train-kafka-'));
  t.after(() => rm(modelsDir, { recursive: true, force: true }));

  // Both telemetry versions under the topic's subject: v1 first, as a real history would have it.
  const store = adminSchemaStore();
  const subject = `${topic}-value`;
  const v1 = await createAvroCodec<Record<string, unknown>>(store, subject, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1));
  const v2 = await createAvroCodec<Record<string, unknown>>(store, subject, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  assert.notEqual(v1.schemaId, v2.schemaId);

  const CARS = 8;
  const T0 = Date.UTC(2025, 5, 1);
  const MINUTES = 10;
  const fleet = createFleet({ cars: CARS, seed: 11, idPrefix: `tk-${id}` });
  const produced: Array<{ reading: Reading; partition: number; offset: number }> = [];
  const nextOffset = [0, 0, 0];
  const producer = kafka.producer();
  await producer.connect();
  for (let s = 0; s < MINUTES * 60; s += 60) {
    const messages = [];
    for (let k = 0; k < 60; k++) {
      for (const reading of fleet.tick(T0 + (s + k) * 1000)) {
        const car = Number(reading.vehicleId.slice(-4)) - 1;
        const partition = car % 3;
        const record: Record<string, unknown> = { vehicle_id: reading.vehicleId, ts: reading.ts, ...reading.values, control_unit_firmware: 3, out_of_range: [], received_at: reading.ts + 40 };
        const codec = car < CARS / 2 ? v1 : v2;
        if (codec === v2) record.ignition_on = true;
        produced.push({ reading, partition, offset: nextOffset[partition]!++ });
        messages.push({ key: reading.vehicleId, partition, timestamp: String(reading.ts), value: codec.encode(record) });
      }
    }
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();

  const from = T0 + 60_000;
  const to = T0 + 9 * 60_000;
  const train = (version: string) =>
    run(
      process.execPath,
      [
        path.join(REPO, 'services/model-lab/dist/bin/training.js'),
        '--from-kafka',
        '--topic',
        topic,
        '--from',
        new Date(from).toISOString(),
        '--to',
        `ts:${to}`,
        '--out',
        modelsDir,
        '--name',
        'kafka-ae',
        '--version',
        version,
        '--epochs',
        '3',
        '--hidden',
        '16,4',
        '--seed',
        '5',
        '--no-eval',
        '--timeout',
        '120',
      ],
      {
        cwd: REPO,
        env: { PATH: process.env.PATH ?? '', KAFKA_BROKERS: INFRA.kafka, SCHEMA_REGISTRY_URL: INFRA.registry, ...kafkaIdentityEnv('admin') },
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  const out1 = await train('1');
  t.diagnostic(
    out1.stdout
      .split('\n')
      .filter((l) => l.startsWith('kafka:') || l.startsWith('data:'))
      .join(' | '),
  );
  await train('2');

  tf.enableProdMode();
  await tf.setBackend('cpu');
  const loaded = await loadModelDir(path.join(modelsDir, 'kafka-ae', '1'));
  loaded.model.dispose();
  const meta = loaded.metadata;

  // What the range holds, from what was produced: per partition the records with from <= ts < to.
  const inRange = produced.filter((p) => p.reading.ts >= from && p.reading.ts < to);
  const expectedPartitions = [0, 1, 2].map((partition) => {
    const mine = produced.filter((p) => p.partition === partition);
    const kept = mine.filter((p) => p.reading.ts >= from && p.reading.ts < to);
    return {
      partition,
      fromOffset: String(kept[0]!.offset),
      toOffset: String(kept.at(-1)!.offset + 1),
      records: kept.length,
      firstTimestamp: kept[0]!.reading.ts,
      lastTimestamp: kept.at(-1)!.reading.ts,
    };
  });
  const kafkaMeta = (meta.trainingData as unknown as { kafka: Record<string, unknown> }).kafka;
  assert.equal(meta.trainingData.source, `kafka:${topic}`);
  assert.equal(kafkaMeta.topic, topic);
  assert.deepEqual(kafkaMeta.partitions, expectedPartitions);
  assert.equal(kafkaMeta.records, inRange.length);
  assert.equal(kafkaMeta.readings, inRange.length, 'every record decoded, v1 and v2 alike');
  assert.equal(kafkaMeta.undecodable, 0);
  assert.equal(kafkaMeta.fromTs, from);
  assert.equal(kafkaMeta.toTs, to - 1000);

  // Windows: the cars not held out (every fifth by id), cut like the windowing service does.
  const ids = [...new Set(inRange.map((p) => p.reading.vehicleId))].sort();
  const held = new Set(ids.filter((_, i) => i % 5 === 4));
  const windower = createWindower(windowDef(10_000), { minEvents: 8 });
  for (const id2 of ids.filter((x) => !held.has(x))) for (const p of inRange.filter((q) => q.reading.vehicleId === id2)) windower.push(p.reading);
  const expectedWindows = windower.flush().length;
  assert.equal(meta.trainingData.windows, expectedWindows);
  assert.equal(meta.trainingData.cars, CARS - held.size);

  // Same seed, same range -> the same weights, byte for byte.
  const w1 = await readFile(path.join(modelsDir, 'kafka-ae', '1', 'weights.bin'));
  const w2 = await readFile(path.join(modelsDir, 'kafka-ae', '2', 'weights.bin'));
  assert.ok(w1.length > 0);
  assert.ok(w1.equals(w2), 'identical weights');
  const m2 = JSON.parse(await readFile(path.join(modelsDir, 'kafka-ae', '2', 'metadata.json'), 'utf8'));
  assert.equal(m2.threshold, meta.threshold);
  assert.deepEqual(m2.trainingData, meta.trainingData);
});
