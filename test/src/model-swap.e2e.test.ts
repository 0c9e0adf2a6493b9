/**
 * A model version dropped into the models folder while scoring runs is picked up between batches:
 * every window is scored exactly once (none lost, none doubled), each alert names the version that
 * scored it, and once the new version serves, the old one never scores again. A broken version
 * dropped afterwards is refused while the served one keeps working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { createAvroCodec, defaultSchemasDir, FEATURE_NAMES, loadSchemaFile, type AlertRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, kafkaClientConfig, REPO, runId, startService, waitForCaughtUp, waitReady } from './support/stack.js';

test('a new model version is swapped in between batches; a broken one is refused', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-models-'));
  await cp(path.join(REPO, 'models/pitwall-ae/1'), path.join(modelsDir, 'pitwall-ae/1'), { recursive: true });
  const meta = JSON.parse(await readFile(path.join(modelsDir, 'pitwall-ae/1/metadata.json'), 'utf8')) as {
    normalization: { mean: number[]; std: number[] };
  };
  const topics = { features: `e2e.${id}.swap.features`, alerts: `e2e.${id}.swap.alerts` };
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  // Past timestamps: no retention, or the broker may delete the segments mid-test (see replay.e2e).
  await admin.createTopics({ topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] })), waitForLeaders: true });
  await admin.disconnect();

  const scoring = await startService(
    'scoring',
    {
      MODEL_DIR: modelsDir,
      MODEL_POLL_MS: '300',
      TFJS_BACKEND: 'wasm',
      TOPIC_FEATURES: topics.features,
      TOPIC_ALERTS: topics.alerts,
      TOPIC_FEATURES_DLQ: `e2e.${id}.swap.dlq`,
      TOPIC_SCORES: `e2e.${id}.swap.scores`,
      TOPIC_MODEL_UPDATES: `e2e.${id}.swap.model.updates`,
      TOPIC_SHADOW_REPORTS: `e2e.${id}.swap.model.shadow`,
      TOPIC_DRIFT_REPORTS: `e2e.${id}.swap.model.drift`,
      SCORING_GROUP_ID: `e2e.${id}.swap`,
    },
    `swap-${id}`,
  );
  await waitReady([scoring]);

  const store = adminSchemaStore();
  const features = await createAvroCodec<Record<string, unknown>>(store, `${topics.features}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
  const alertsCodec = await createAvroCodec<AlertRecord>(store, `${topics.alerts}-value`, await loadSchemaFile(defaultSchemasDir(), 'alert', 1));
  // Every window is an overheating one: each must produce exactly one alert.
  const window = (vehicle: string, start: number): Buffer => {
    const rec: Record<string, unknown> = { vehicle_id: vehicle, window_start: start, window_end: start + 10_000, event_count: 10 };
    FEATURE_NAMES.forEach((name, i) => (rec[name] = meta.normalization.mean[i]! + (name.startsWith('coolant_temp_') ? 40 * meta.normalization.std[i]! : 0)));
    return features.encode(rec);
  };
  const reader = await collect(kafka, { topic: topics.alerts, decode: alertsCodec });

  const producer = kafka.producer();
  await producer.connect();
  const T = Date.UTC(2026, 0, 1);
  const ROUNDS = 40;
  const VEHICLES = 6;
  for (let r = 0; r < ROUNDS; r++) {
    await producer.send({ topic: topics.features, messages: Array.from({ length: VEHICLES }, (_, v) => ({ key: `s-${v}`, value: window(`s-${v}`, T + r * 10_000) })) });
    if (r === 12) {
      // Drop version 2 (same weights, new version) while windows keep coming.
      await cp(path.join(modelsDir, 'pitwall-ae/1'), path.join(modelsDir, 'pitwall-ae/2.tmp'), { recursive: true });
      const m2 = JSON.parse(await readFile(path.join(modelsDir, 'pitwall-ae/2.tmp/metadata.json'), 'utf8'));
      await writeFile(path.join(modelsDir, 'pitwall-ae/2.tmp/metadata.json'), JSON.stringify({ ...m2, version: '2' }));
      const { rename } = await import('node:fs/promises');
      await rename(path.join(modelsDir, 'pitwall-ae/2.tmp'), path.join(modelsDir, 'pitwall-ae/2'));
    }
    if (r === 28) {
      // Version 3 is broken (weights file truncated): refused, version 2 keeps serving.
      await cp(path.join(modelsDir, 'pitwall-ae/1'), path.join(modelsDir, 'pitwall-ae/3'), { recursive: true });
      const w = await readFile(path.join(modelsDir, 'pitwall-ae/3/weights.bin'));
      await writeFile(path.join(modelsDir, 'pitwall-ae/3/weights.bin'), w.subarray(0, 100));
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await producer.disconnect();
  const total = ROUNDS * VEHICLES;
  try {
    await reader.waitFor(total, 60_000, `${total} alerts`);
    // A window scored twice would come after the first: judge once scoring has committed every
    // window and the reader every alert, not after a fixed wait.
    await admin.connect();
    await waitForCaughtUp(
      admin,
      [
        { group: `e2e.${id}.swap`, topic: topics.features },
        { group: reader.groupId, topic: topics.alerts },
      ],
      60_000,
    );
  } finally {
    await admin.disconnect();
    await reader.stop();
    assert.equal(await scoring.stop(), 0);
  }
  const alerts: AlertRecord[] = reader.values();

  const keys = alerts.map((a) => `${a.vehicle_id}@${a.window_start}`);
  assert.equal(new Set(keys).size, total, 'every window scored');
  assert.equal(alerts.length, total, 'no window scored twice');
  const versions = alerts.map((a) => a.model_version);
  t.diagnostic(`alerts by version: 1=${versions.filter((v) => v === '1').length}, 2=${versions.filter((v) => v === '2').length}`);
  assert.ok(versions.includes('1') && versions.includes('2'), 'both versions served');
  assert.ok(!versions.includes('3'), 'the broken version never served');
  // Per vehicle (one partition each), windows are in order: version 1 never returns after 2.
  for (let v = 0; v < VEHICLES; v++) {
    const seq = alerts
      .filter((a) => a.vehicle_id === `s-${v}`)
      .sort((a, b) => a.window_start - b.window_start)
      .map((a) => a.model_version);
    assert.equal(seq.join('').replace(/^1*2*$/, ''), '', `s-${v} versions in order: ${seq.join('')}`);
  }
  const log = await readFile(scoring.logFile, 'utf8');
  assert.match(log, /"msg":"model swapped"/);
  assert.match(log, /"msg":"model version refused; the active model keeps serving".*pitwall-ae\/3/);
});
