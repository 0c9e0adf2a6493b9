/**
 * A fleet reporting every 10 s, as the reference demo's CarData cars do, scored end to end on the
 * real brokers: CarData-shaped readings (the reference CSV's units) published over MQTT, ingest
 * with INGEST_FLEET_PROFILE=cardata-v1, windowing computing 10 s and 120 s windows
 * (WINDOW_SIZES_MS), scoring serving pitwall-ae (10 s at 1 Hz) and a model trained here on
 * CarData-shaped readings with the CSV path (readingsInProfile, --window 120), which declares
 * 120 s windows at 0.1 Hz and the cardata-v1 profile.
 *
 * Shown: every full 120 s window (12 readings) is scored by the 120 s model, none is skipped, and
 * the car whose coolant boils alerts in that window only; the 10 s windows (one reading each) are
 * counted as partial by pitwall-ae and never scored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Kafka, logLevel } from 'kafkajs';
import { connectMqtt, createAvroCodec, defaultSchemasDir, loadFleetProfile, loadSchemaFile, silentLogger, type ScoreRecord } from '@pitwall/common';
import { CARDATA_FAILING, CARDATA_HEALTHY, collect } from '@pitwall/common/testing';
import { estimateRateHz, readingsInProfile, trainModel } from '@pitwall/model-lab';
import type { Reading } from '@pitwall/simulator';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, REPO, runId, type ServiceProcess, startService, waitFor, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

const PERIOD_MS = 10_000;
const WINDOW_MS = 120_000;

/** A CarData-shaped reading of car `car` at step `k`: the fixture's values with a little noise. */
function cardata(car: number, k: number, base: Readonly<Record<string, number>> = CARDATA_HEALTHY): Record<string, number> {
  const wobble = Math.sin(car * 7 + k) * 0.01;
  return Object.fromEntries(Object.entries(base).map(([s, v]) => [s, Number.isInteger(v) ? v : v * (1 + wobble)]));
}

test('a 10 s CarData fleet: 120 s windows are scored by the model declaring them, 10 s ones skipped as partial', { timeout: 240_000 }, async (t) => {
  const id = runId();

  // The 120 s model: trained with the CSV path on 6 healthy CarData-shaped cars, 30 minutes each.
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-models-'));
  t.after(() => rm(modelsDir, { recursive: true, force: true }));
  await cp(path.join(REPO, 'models/pitwall-ae/1'), path.join(modelsDir, 'pitwall-ae/1'), { recursive: true });
  const profile = loadFleetProfile('cardata-v1', 'test');
  const history: Reading[] = [];
  for (let car = 1; car <= 6; car++) for (let k = 0; k < 180; k++) history.push({ vehicleId: `train${car}`, ts: 1_567_605_600_000 + k * PERIOD_MS, values: cardata(car, k) });
  await tf.setBackend('cpu');
  const trained = await trainModel({
    ...{ cars: 0, hours: 0, holdoutCars: 0, holdoutHours: 0 },
    seed: 5,
    epochs: 30,
    batchSize: 16,
    learningRate: 0.005,
    hidden: [24, 6],
    thresholdFactor: 1.5,
    evaluation: false,
    outDir: modelsDir,
    name: 'cardata-ae',
    version: '1',
    csv: { readings: readingsInProfile(history, profile), source: 'cardata-shaped.csv' },
    window: { sizeMs: WINDOW_MS, rateHz: estimateRateHz(history)! },
    fleetProfile: profile.name,
  });
  trained.model.dispose();
  assert.deepEqual(trained.metadata.window, { sizeMs: WINDOW_MS, rateHz: 0.1, minReadings: 10, minCoverage: 0.8 });
  assert.equal(trained.metadata.fleetProfile, 'cardata-v1');

  const env: Record<string, string> = {
    ...isolatedEnv(id),
    INGEST_FLEET_PROFILE: 'cardata-v1',
    INGEST_LINGER_MS: '20',
    WINDOW_SIZES_MS: `${PERIOD_MS},${WINDOW_MS}`,
    WINDOWING_FETCH_MIN_BYTES: '1',
    MODEL_DIR: modelsDir,
    MODEL_NAME: 'pitwall-ae,cardata-ae',
  };
  const services: ServiceProcess[] = [];
  for (const name of ['ingest', 'windowing', 'scoring']) services.push(await startService(name, env, `cardata-windows-${id}`));
  t.after(() => Promise.all(services.map((s) => s.stop())));
  await waitReady(services, 90_000);
  const scoring = services[2]!;

  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const store = adminSchemaStore();
  const featuresCodec = await createAvroCodec<Record<string, unknown>>(store, `${env.TOPIC_FEATURES!}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 2));
  const scoresCodec = await createAvroCodec<ScoreRecord>(store, `${env.TOPIC_SCORES!}-value`, await loadSchemaFile(defaultSchemasDir(), 'score', 1));
  const features = await collect(kafka, { topic: env.TOPIC_FEATURES!, decode: featuresCodec });
  const scores = await collect(kafka, { topic: env.TOPIC_SCORES!, decode: scoresCodec });
  t.after(() => Promise.all([features.stop(), scores.stop()]));

  // Three cars, one reading every 10 s from a 2 min boundary an hour ago, for 370 s: three full
  // 120 s windows each, closed by the car's own next readings. The sick car's coolant boils (and
  // its battery drains below zero) in the third window only.
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  t.after(() => publisher.endAsync());
  const t0 = Math.floor((Date.now() - 3_600_000) / WINDOW_MS) * WINDOW_MS;
  const cars = [`ok1${id}`, `ok2${id}`, `sick${id}`];
  for (let k = 0; k <= 37; k++) {
    for (const [i, car] of cars.entries()) {
      const ts = t0 + k * PERIOD_MS;
      const failing = car.startsWith('sick') && ts >= t0 + 2 * WINDOW_MS && ts < t0 + 3 * WINDOW_MS;
      await publisher.publishAsync(`vehicles/${car}/telemetry`, JSON.stringify({ ts, ...cardata(i + 1, k, failing ? CARDATA_FAILING : CARDATA_HEALTHY) }), { qos: 1 });
    }
  }

  const scored = await scores.waitFor(9, 90_000, 'three 120 s windows of each car scored');
  const byCar = new Map<string, ScoreRecord[]>();
  for (const { value: s } of scored) byCar.set(s.vehicle_id, [...(byCar.get(s.vehicle_id) ?? []), s]);
  for (const car of cars) {
    const mine = (byCar.get(car) ?? []).sort((a, b) => a.window_start - b.window_start);
    assert.deepEqual(
      mine.map((s) => [s.window_start - t0, s.window_end - s.window_start, s.model_name, s.model_version]),
      [0, 1, 2].map((w) => [w * WINDOW_MS, WINDOW_MS, 'cardata-ae', '1']),
      `${car}: its three 120 s windows, scored by the 120 s model`,
    );
    assert.deepEqual(
      mine.map((s) => s.anomalous),
      car.startsWith('sick') ? [false, false, true] : [false, false, false],
      `${car}: alerts only where the coolant boils`,
    );
  }
  const sick = byCar.get(`sick${id}`)!.find((s) => s.anomalous)!;
  assert.ok(
    sick.contributors.some((c) => c.sensor === 'coolant_temp' || c.sensor === 'battery_percentage'),
    JSON.stringify(sick.contributors),
  );

  // The windows behind those scores: 120 s ones hold 12 readings and name their definition (features
  // v2); every 10 s one holds a single reading and is skipped by pitwall-ae, which needs 8.
  const windows = features.values();
  const long = windows.filter((w) => w.window_size_ms === WINDOW_MS);
  const short = windows.filter((w) => w.window_size_ms === PERIOD_MS);
  assert.deepEqual(
    long.map((w) => w.event_count),
    long.map(() => 12),
  );
  assert.ok(short.length >= 3 * 35 && short.every((w) => w.event_count === 1), `${short.length} 10 s windows of one reading`);
  const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  const partial = await waitFor(
    'the 10 s windows counted as partial',
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${scoring.healthPort}/metrics`)).text();
      const n = metric(text, 'pitwall_scoring_partial_windows_skipped_total');
      const scored = metric(text, 'pitwall_scoring_windows_scored_total');
      // Skipped windows are counted while the chunk is scored, scored ones once its send has
      // committed: a consumer may read the scores a moment before the counter moves.
      return n >= short.length && scored >= 9 ? { n, scored } : undefined;
    },
    30_000,
  );
  assert.equal(partial.scored, 9, 'only the 120 s windows were scored');
});
