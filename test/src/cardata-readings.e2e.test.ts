/**
 * A per-reading model as a data scientist makes it, served end to end on the real brokers: the
 * reference demo's testdata/car-sensor-data.csv (100 cars, 10,000 readings) published over MQTT in
 * its own units, ingest with INGEST_FLEET_PROFILE=cardata-v1, and a scoring deployment with
 * SCORING_INPUT=readings serving the Keras per-reading CarData autoencoder of the model-lab fixtures
 * (keras3-cardata-reading.h5, made by make_fixtures.py with keras 3.15.1), imported here with its
 * input declaration (13 sensors, min-max in psi and fractions, converted at import).
 *
 * Shown: every reading of every car gets exactly one score (deduplicated by car and time: delivery
 * is at-least-once), each equal to the offline computation (ingest's own conversion, then
 * scoreBatch with the imported model on the cpu backend), and the anomalous ones are the readings
 * the offline computation puts above the threshold; the model never sees a window, so
 * window_start = window_end = the reading's time.
 *
 * The CSV is not in this repository: CARDATA_CSV names it, else it is read from the reference
 * demo's mirror with git; without either the test is skipped, saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Kafka, logLevel } from 'kafkajs';
import { applyFleetProfile, connectMqtt, createAvroCodec, defaultSchemasDir, loadFleetProfile, loadSchemaFile, silentLogger, type ScoreRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { loadModelDir, scoreBatch } from '@pitwall/model';
import { importModel } from '@pitwall/model-lab';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, REPO, runId, type ServiceProcess, startService, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

const MIRROR = '/work/.mirror/kaiwaehner+hivemq-mqtt-tensorflow-kafka-realtime-iot-machine-learning-training-inference/repo';
const FIXTURES = path.join(REPO, 'services/model-lab/test/fixtures/keras');

function referenceCsv(): string | undefined {
  if (process.env.CARDATA_CSV) return execFileSync('cat', [process.env.CARDATA_CSV], { encoding: 'utf8', maxBuffer: 64 << 20 });
  try {
    return execFileSync('git', ['--git-dir', MIRROR, 'show', 'HEAD:testdata/car-sensor-data.csv'], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

const csv = referenceCsv();

test('the reference CarData CSV, each reading scored by a per-reading Keras model', { timeout: 600_000, skip: csv === undefined && 'no car-sensor-data.csv (set CARDATA_CSV)' }, async (t) => {
  const id = runId();
  const [header, ...lines] = csv!.trim().split(/\r?\n/);
  const columns = header!.split(',');
  const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [columns[i]!, v])));
  assert.equal(rows.length, 10_000);

  // The Keras model, imported with its input declaration into a models folder of this run.
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-models-'));
  t.after(() => rm(modelsDir, { recursive: true, force: true }));
  await tf.setBackend('cpu');
  const sidecar = JSON.parse(await readFile(path.join(FIXTURES, 'keras3-cardata-reading.metadata.json'), 'utf8')) as Record<string, unknown>;
  await importModel({ format: 'keras', file: path.join(FIXTURES, 'keras3-cardata-reading.h5'), name: 'cardata-reading-ae', version: '1', metadata: sidecar, modelsDir });
  const model = await loadModelDir(path.join(modelsDir, 'cardata-reading-ae', '1'));
  t.after(() => model.model.dispose());

  // Offline: ingest's conversion of each row (cardata-v1), then the serving code's scoreBatch.
  const profile = loadFleetProfile('cardata-v1', 'test');
  const car = (name: string): string => `${name}-${id}`;
  const offline = new Map<string, number>();
  const vectors = rows.map((r) => {
    const canonical: Record<string, unknown> = {};
    applyFleetProfile(profile, (field) => Number(r[field]), canonical);
    return Float32Array.from(model.metadata.features, (s) => canonical[s] as number);
  });
  scoreBatch(model.model, model.metadata, vectors).forEach((s, i) => offline.set(`${car(rows[i]!.car!)}|${Number(rows[i]!.time) * 1000}`, s.score));
  assert.equal(offline.size, 10_000, 'one reading per car and time');
  const threshold = model.metadata.threshold;

  const env: Record<string, string> = {
    ...isolatedEnv(id),
    INGEST_FLEET_PROFILE: 'cardata-v1',
    INGEST_LINGER_MS: '20',
    MODEL_DIR: modelsDir,
    MODEL_NAME: 'cardata-reading-ae',
    SCORING_INPUT: 'readings',
  };
  const services: ServiceProcess[] = [];
  for (const name of ['ingest', 'scoring']) services.push(await startService(name, env, `cardata-readings-${id}`));
  t.after(() => Promise.all(services.map((s) => s.stop())));
  await waitReady(services, 90_000);
  const scoring = services[1]!;

  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const scoresCodec = await createAvroCodec<ScoreRecord>(adminSchemaStore(), `${env.TOPIC_SCORES!}-value`, await loadSchemaFile(defaultSchemasDir(), 'score', 1));
  const scores = await collect(kafka, { topic: env.TOPIC_SCORES!, decode: scoresCodec });
  t.after(() => scores.stop());

  // Every row as the reference demo's car would send it: its own units, ts in ms.
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  t.after(() => publisher.endAsync());
  for (let i = 0; i < rows.length; i += 200) {
    await Promise.all(
      rows.slice(i, i + 200).map((r) => {
        const { time, car: name, ...fields } = r;
        const payload = { ts: Number(time) * 1000, ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Number(v)])) };
        return publisher.publishAsync(`vehicles/${car(name!)}/telemetry`, JSON.stringify(payload), { qos: 1 });
      }),
    );
  }

  // One score per reading: at-least-once, so deduplicated by car and time.
  const byReading = await scores.waitFor<Map<string, ScoreRecord>>(
    (records) => {
      const m = new Map<string, ScoreRecord>();
      for (const { value: s } of records) m.set(`${s.vehicle_id}|${s.window_start}`, s);
      return m.size >= offline.size ? m : undefined;
    },
    300_000,
    'a score for each of the 10,000 readings',
  );
  assert.deepEqual([...byReading.keys()].sort(), [...offline.keys()].sort(), 'exactly the readings sent, each scored');
  const cars = new Set([...byReading.values()].map((s) => s.vehicle_id));
  assert.equal(cars.size, 100, 'all 100 cars scored');
  let alerts = 0;
  let offlineAlerts = 0;
  let maxDiff = 0;
  for (const [key, s] of byReading) {
    const want = offline.get(key)!;
    const diff = Math.abs(s.score - want) / Math.max(1, want);
    maxDiff = Math.max(maxDiff, diff);
    assert.ok(diff <= 1e-5, `${key}: served score ${s.score}, offline ${want}`);
    assert.equal(s.window_end, s.window_start, 'a reading is an instant');
    assert.deepEqual([s.model_name, s.model_version, s.threshold], ['cardata-reading-ae', '1', threshold]);
    if (Math.abs(want - threshold) > 1e-5) assert.equal(s.anomalous, want > threshold, key);
    if (s.anomalous) alerts++;
    if (want > threshold) offlineAlerts++;
    assert.ok(
      s.contributors.every((c) => model.metadata.features.includes(c.sensor)),
      JSON.stringify(s.contributors),
    );
  }
  const leading = new Map<string, number>();
  for (const s of byReading.values()) if (s.anomalous) leading.set(s.contributors[0]!.sensor, (leading.get(s.contributors[0]!.sensor) ?? 0) + 1);
  const alertCars = new Set([...byReading.values()].filter((s) => s.anomalous).map((s) => s.vehicle_id));
  const metrics = await (await fetch(`http://127.0.0.1:${scoring.healthPort}/metrics`)).text();
  const metric = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
  t.diagnostic(
    `${byReading.size} readings of ${cars.size} cars scored (${scores.values().length} score records), ${alerts} anomalous (offline ${offlineAlerts}) on ${alertCars.size} cars (first contributor: ${[
      ...leading,
    ]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}), ` +
      `max relative difference to offline ${maxDiff.toExponential(2)}, dead-lettered ${metric('pitwall_scoring_dead_lettered_total')}, partial ${metric('pitwall_scoring_partial_windows_skipped_total')}`,
  );
  assert.equal(alerts, offlineAlerts);
  assert.ok(alerts > 0 && alerts < byReading.size / 10, `${alerts} anomalous readings`);
  assert.equal(metric('pitwall_scoring_partial_windows_skipped_total'), 0, 'a reading is never a partial window');
});
