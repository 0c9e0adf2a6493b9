/**
 * Drift end to end on the real broker and registry: scoring (its own main.ts, the committed model
 * pitwall-ae/1 and its drift reference) scores feature windows, and the console (its own main.ts)
 * follows model.drift.
 *  1. 3,000 windows drawn from the training data's own per-feature distribution (the reference's
 *     bins and shares): every feature's PSI on /metrics stays below 0.1 and the console reads the
 *     fleet as stable;
 *  2. 3,000 more of other cars whose coolant temperature features all lie above the training
 *     data's highest decile edge: exactly the six coolant features read significant (> 0.25) on
 *     /metrics, in scoring's log and on the console's fleet drift, and a shifted car's own drift
 *     names a coolant feature first.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { createAvroCodec, defaultSchemasDir, ensureTopics, FEATURE_NAMES, loadSchemaFile, type DriftReference } from '@pitwall/common';
import { mulberry32 } from '@pitwall/simulator';
import { consoleUsers } from './support/console-users.js';
import { scrape } from './support/prometheus.js';
import { adminSchemaStore, freePort, isolatedEnv, kafkaClientConfig, REPO, runId, type ServiceProcess, startService, waitFor, waitForLog, waitReady } from './support/stack.js';

const id = runId();
const env = isolatedEnv(id);
const WINDOWS = 3_000;
const COOLANT = FEATURE_NAMES.filter((f) => f.startsWith('coolant_temp_'));
const kafka = new Kafka({ clientId: `e2e-drift-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });

/** A value in bin b of a feature: the middle of an inner bin, or 1 beyond the outer edges. */
function valueIn(edges: readonly number[], b: number): number {
  if (edges.length === 0) return 0;
  if (b === 0) return edges[0]! - 1;
  if (b === edges.length) return edges.at(-1)! + 1;
  return (edges[b - 1]! + edges[b]!) / 2;
}

interface FleetDrift {
  model: string;
  role: string;
  available: boolean;
  windows: number;
  max_psi: number | null;
  reading: string | null;
  significant: number;
  top: { feature: string; psi: number; reading: string }[];
}

describe('drift of live windows from the training data', { timeout: 300_000 }, () => {
  let scoring: ServiceProcess;
  let consoleSvc: ServiceProcess;
  let base = '';
  let cookie = '';
  let reference: DriftReference;
  const producer = kafka.producer();
  const rand = mulberry32(1234);

  /** A window whose features are drawn from the reference (coolant in the top bin when shifted). */
  const windowValues = (shifted: boolean): Record<string, number> => {
    const out: Record<string, number> = {};
    reference.features.forEach((f, i) => {
      const name = FEATURE_NAMES[i]!;
      let b = f.proportions.length - 1;
      if (!(shifted && COOLANT.includes(name))) {
        let u = rand();
        for (b = 0; b < f.proportions.length - 1 && u >= f.proportions[b]!; b++) u -= f.proportions[b]!;
      }
      out[name] = valueIn(f.edges, b);
    });
    return out;
  };

  const send = async (prefix: string, cars: number, shifted: boolean): Promise<void> => {
    const features = await createAvroCodec<Record<string, unknown>>(adminSchemaStore(), `${env.TOPIC_FEATURES}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
    const T = Date.UTC(2026, 0, 1);
    for (let sent = 0; sent < WINDOWS;) {
      const messages = [];
      for (let k = 0; k < 500 && sent < WINDOWS; k++, sent++) {
        const car = `${prefix}-${sent % cars}`;
        const start = T + Math.floor(sent / cars) * 10_000;
        messages.push({ key: car, value: features.encode({ vehicle_id: car, window_start: start, window_end: start + 10_000, event_count: 10, ...windowValues(shifted) }) });
      }
      await producer.send({ topic: env.TOPIC_FEATURES, messages, acks: -1 });
    }
  };

  const metrics = async () => scrape(scoring.healthPort);
  const psiOf = async (feature: string): Promise<number> => (await metrics()).sum('pitwall_scoring_drift_psi', { model: 'pitwall-ae', role: 'active', feature });
  const fleetDrift = async (): Promise<FleetDrift | undefined> => {
    const res = await fetch(`${base}/api/drift`, { headers: { cookie } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { models: FleetDrift[] }).models.find((m) => m.model === 'pitwall-ae' && m.role === 'active');
  };

  before(async () => {
    reference = (JSON.parse(await readFile(path.join(REPO, 'models/pitwall-ae/1/metadata.json'), 'utf8')) as { drift: DriftReference }).drift;
    assert.ok(reference, 'the committed model has a drift reference');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: env.TOPIC_FEATURES, configEntries: { 'retention.ms': '-1' } }], { partitions: 3 });
    await admin.disconnect();
    await producer.connect();
    scoring = await startService(
      'scoring',
      { ...env, TFJS_BACKEND: 'wasm', TOPIC_FEATURES_DLQ: `e2e.${id}.features.dlq`, SCORING_DRIFT_REPORT_MS: '1000', SCORING_DRIFT_PERIOD_S: '3600', SCORING_DRIFT_VEHICLE_WINDOWS: '40' },
      `drift-${id}`,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const users = await consoleUsers([{ name: 'vic', role: 'viewer', password: 'viewer-pass' }]);
    consoleSvc = await startService('console', { ...env, CONSOLE_PORT: String(port), CONSOLE_USERS: users }, `drift-${id}`);
    await waitReady([scoring]);
    await waitFor(`console ready (log: ${consoleSvc.logFile})`, async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 90_000);
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { origin: base, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ user: 'vic', password: 'viewer-pass' }),
    });
    assert.equal(res.status, 200);
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  });

  after(async () => {
    await producer.disconnect();
    assert.equal(await consoleSvc?.stop(), 0);
    assert.equal(await scoring?.stop(), 0);
  });

  test('windows like the training data: every feature stable on /metrics and on the console', async (t) => {
    await send(`e2e${id}-a`, 20, false);
    const m = await waitFor(
      '3,000 windows in the drift period',
      async () => ((await metrics()).sum('pitwall_scoring_drift_windows', { model: 'pitwall-ae', role: 'active' }) >= WINDOWS ? metrics() : undefined),
      120_000,
    );
    assert.equal(m.sum('pitwall_scoring_drift_windows', { model: 'pitwall-ae', role: 'active' }), WINDOWS);
    assert.equal(m.sum('pitwall_scoring_drift_available', { model: 'pitwall-ae', role: 'active' }), 1);
    const psis = m.samples.filter((s) => s.name === 'pitwall_scoring_drift_psi');
    assert.equal(psis.length, FEATURE_NAMES.length, 'one PSI per feature');
    const max = Math.max(...psis.map((s) => s.value));
    t.diagnostic(`like the training data: max PSI ${max.toFixed(4)} over ${FEATURE_NAMES.length} features`);
    assert.ok(max < 0.1, `max PSI ${max}`);
    assert.equal(m.sum('pitwall_scoring_drift_significant_features', { model: 'pitwall-ae', role: 'active' }), 0);
    const fleet = await waitFor(
      'the console sees 3,000 windows',
      async () => {
        const d = await fleetDrift();
        return d && d.windows === WINDOWS ? d : undefined;
      },
      60_000,
    );
    assert.equal(fleet.reading, 'stable');
    assert.ok(Math.abs(fleet.max_psi! - max) < 1e-9, `console ${fleet.max_psi} vs scoring ${max}`);
  });

  test('cars whose coolant runs above the training range: exactly the coolant features read significant', async (t) => {
    await send(`e2e${id}-hot`, 10, true);
    await waitFor(
      '6,000 windows in the drift period',
      async () => (await metrics()).sum('pitwall_scoring_drift_windows', { model: 'pitwall-ae', role: 'active' }) >= 2 * WINDOWS || undefined,
      120_000,
    );
    const m = await metrics();
    const significant = m.samples
      .filter((s) => s.name === 'pitwall_scoring_drift_psi' && s.value > 0.25)
      .map((s) => s.labels.feature)
      .sort();
    assert.deepEqual(significant, [...COOLANT].sort());
    const coolant = await psiOf('coolant_temp_mean');
    t.diagnostic(`shifted: coolant_temp_mean PSI ${coolant.toFixed(3)}, speed_mean ${(await psiOf('speed_mean')).toFixed(4)}`);
    assert.ok(coolant > 1, 'half the windows in the top decile: PSI ~1.1');
    assert.ok((await psiOf('speed_mean')) < 0.1);
    assert.equal(m.sum('pitwall_scoring_drift_significant_features', { model: 'pitwall-ae', role: 'active' }), COOLANT.length);
    assert.ok(m.sum('pitwall_scoring_drift_max_psi', { model: 'pitwall-ae', role: 'active' }) > 1);
    const line = await waitForLog(scoring, /model drift significant/, 30_000);
    assert.match(line, /coolant_temp_/);

    const fleet = await waitFor(
      'the console sees 6,000 windows',
      async () => {
        const d = await fleetDrift();
        return d && d.windows === 2 * WINDOWS ? d : undefined;
      },
      60_000,
    );
    assert.equal(fleet.reading, 'significant');
    assert.equal(fleet.significant, COOLANT.length);
    assert.ok(fleet.top.slice(0, 5).every((t) => t.feature.startsWith('coolant_temp_') && t.reading === 'significant'));

    const car = await waitFor(
      'a hot car drift on the console',
      async () => {
        const res = await fetch(`${base}/api/vehicles/${encodeURIComponent(`e2e${id}-hot-3`)}/drift`, { headers: { cookie } });
        const body = (await res.json()) as { drift: FleetDrift | null };
        return body.drift ?? undefined;
      },
      60_000,
    );
    assert.equal(car.reading, 'significant');
    assert.match(car.top[0]!.feature, /^coolant_temp_/);
    assert.ok(car.windows >= 20 && car.windows <= 40, `${car.windows} windows`);
    t.diagnostic(`hot car: max PSI ${car.max_psi?.toFixed(3)} over ${car.windows} windows, top ${car.top[0]!.feature}`);
  });
});
