import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetricsRegistry, FEATURE_NAMES, type DriftReference, type Logger, silentLogger } from '@pitwall/common';
import type { LoadedModel } from '@pitwall/model';
import { metadataFor, vectorWith } from '@pitwall/model/testing';
import { createDriftMonitor, createDriftReporter } from '../src/drift.js';

/** Every feature: half of the training windows at or below 0.5, half above. */
const HALVES: DriftReference = { bins: 2, method: 'test', features: FEATURE_NAMES.map(() => ({ edges: [0.5], proportions: [0.5, 0.5] })) };
const COOLANT = FEATURE_NAMES.filter((f) => f.startsWith('coolant_temp_'));

/** Half the windows all 0, half all 1: like the training data for every feature. */
const likeTraining = (n: number): Float32Array[] => Array.from({ length: n }, (_, i) => vectorWith(Object.fromEntries(FEATURE_NAMES.map((f) => [f.replace(/_[a-z]+$/, ''), i % 2]))));

function capture(): { log: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const log: Logger = { ...silentLogger, child: () => log, warn: (_msg: string, fields?: Record<string, unknown>) => void warnings.push({ msg: _msg, ...fields }) };
  return { log, warnings };
}

const metric = (text: string, name: string, labels: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
};

describe('drift monitor', () => {
  it('logs significant fleet drift only once the sample is large enough to tell it from noise', () => {
    const { log, warnings } = capture();
    let t = 1_000_000;
    const m = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 100, instance: 'r1', log, now: () => t });
    const meta = metadataFor({ name: 'pitwall-ae', version: '1', drift: HALVES });
    const shifted = (n: number): Float32Array[] =>
      likeTraining(n).map((v) => {
        for (const f of COOLANT) v[FEATURE_NAMES.indexOf(f)] = 4;
        return v;
      });
    // 2 bins: 100 windows needed. 60 windows all above the median read significant, but are not logged.
    m.observe(
      meta,
      Array.from({ length: 60 }, () => 'car-1'),
      shifted(60),
    );
    assert.ok(m.fleet()[0]!.summary!.significant > 0);
    assert.equal(m.logSignificant(), 0);
    assert.equal(warnings.length, 0);
    t += 2_000;
    m.observe(
      meta,
      Array.from({ length: 40 }, () => 'car-1'),
      shifted(40),
    );
    assert.equal(m.logSignificant(), 1);
  });

  it('like the training data: PSI ~0 per feature; a shifted sensor reads significant, in gauges, records and the log', async () => {
    let t = 1_000_000;
    const metrics = createMetricsRegistry({ processMetrics: false });
    const { log, warnings } = capture();
    const m = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 100, instance: 'r1', log, metrics, now: () => t });
    const meta = metadataFor({ name: 'pitwall-ae', version: '1', drift: HALVES });
    m.observe(
      meta,
      likeTraining(100).map((_, i) => `car-${i % 4}`),
      likeTraining(100),
    );
    let text = await metrics.metrics();
    assert.equal(metric(text, 'pitwall_scoring_drift_psi', 'model="pitwall-ae",role="active",feature="speed_mean"'), 0);
    assert.equal(metric(text, 'pitwall_scoring_drift_max_psi', 'model="pitwall-ae",role="active"'), 0);
    assert.equal(metric(text, 'pitwall_scoring_drift_windows', 'model="pitwall-ae",role="active"'), 100);
    assert.equal(m.logSignificant(), 0);

    // 100 more windows whose coolant features are all above the training median: 75 % above.
    t += 1_000;
    const shifted = likeTraining(100).map((v) => {
      for (const f of COOLANT) v[FEATURE_NAMES.indexOf(f)] = 4;
      return v;
    });
    m.observe(
      meta,
      shifted.map(() => 'car-9'),
      shifted,
    );
    text = await metrics.metrics();
    const coolant = metric(text, 'pitwall_scoring_drift_psi', 'model="pitwall-ae",role="active",feature="coolant_temp_mean"')!;
    // p_live = (0.25, 0.75) against (0.5, 0.5): 2 x 0.25 x ln(1.5) ... = 0.2747.
    assert.ok(Math.abs(coolant - (0.25 * Math.log(1.5) + 0.25 * Math.log(2))) < 1e-9, `coolant PSI ${coolant}`);
    assert.equal(metric(text, 'pitwall_scoring_drift_psi', 'model="pitwall-ae",role="active",feature="speed_mean"'), 0);
    assert.equal(metric(text, 'pitwall_scoring_drift_significant_features', 'model="pitwall-ae",role="active"'), COOLANT.length);
    assert.equal(m.logSignificant(), 1);
    assert.match(String(warnings.at(-1)!.top), /^coolant_temp_\w+ 0\.275/);

    const [fleet] = m.fleet();
    assert.equal(fleet!.available, true);
    assert.equal(fleet!.windows, 200);
    assert.deepEqual(fleet!.counts![FEATURE_NAMES.indexOf('coolant_temp_mean')], [50, 150]);
    assert.deepEqual(fleet!.proportions![0], [0.5, 0.5]);

    // Per vehicle: car-9's last 10 windows (two blocks of 5: 5 to 10 of them) are all shifted.
    const vehicles = m.takeVehicles();
    assert.deepEqual(vehicles.map((v) => v.vehicle_id).sort(), ['car-0', 'car-1', 'car-2', 'car-3', 'car-9']);
    const car9 = vehicles.find((v) => v.vehicle_id === 'car-9')!;
    assert.equal(car9.reading, 'significant');
    assert.ok(car9.windows >= 5 && car9.windows <= 10);
    assert.ok(COOLANT.includes(car9.top[0]!.feature));
    assert.deepEqual(m.takeVehicles(), [], 'only vehicles with windows since the last call');

    // The period slides: a minute later the windows are gone.
    t += 61_000;
    text = await metrics.metrics();
    assert.equal(metric(text, 'pitwall_scoring_drift_windows', 'model="pitwall-ae",role="active"'), 0);
    assert.equal(metric(text, 'pitwall_scoring_drift_max_psi', 'model="pitwall-ae",role="active"'), undefined, 'no windows: no PSI, not 0');
  });

  it('a model without a reference reports drift as unavailable, not zero; the shadow is tracked against its own', async () => {
    const metrics = createMetricsRegistry({ processMetrics: false });
    const shadowModel = { metadata: metadataFor({ name: 'pitwall-ae', version: '2', drift: HALVES }) } as LoadedModel;
    const m = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 10, instance: 'r1', log: silentLogger, metrics, shadowed: { name: 'pitwall-ae', current: () => shadowModel } });
    m.observe(metadataFor({ name: 'pitwall-ae', version: '1' }), ['a', 'b'], likeTraining(2));
    const text = await metrics.metrics();
    assert.equal(metric(text, 'pitwall_scoring_drift_available', 'model="pitwall-ae",role="active"'), 0);
    assert.equal(metric(text, 'pitwall_scoring_drift_available', 'model="pitwall-ae",role="shadow"'), 1);
    assert.equal(metric(text, 'pitwall_scoring_drift_max_psi', 'model="pitwall-ae",role="active"'), undefined);
    assert.equal(metric(text, 'pitwall_scoring_drift_max_psi', 'model="pitwall-ae",role="shadow"'), 0);
    const s = m.shadowDrift()!;
    assert.equal(s.active, null);
    assert.equal(s.shadow!.version, '2');
    assert.equal(s.shadow!.windows, 2);
    assert.deepEqual(m.takeVehicles(), [], 'vehicles are tracked against the active model only');
    let shadowServes = true;
    const m2 = createDriftMonitor({
      periodMs: 60_000,
      vehicleWindows: 10,
      maxVehicles: 10,
      instance: 'r1',
      log: silentLogger,
      shadowed: { name: 'pitwall-ae', current: () => (shadowServes ? shadowModel : undefined) },
    });
    m2.observe(metadataFor({ name: 'pitwall-ae', version: '1', drift: HALVES }), ['a'], likeTraining(1));
    assert.deepEqual(
      m2.fleet().map((r) => r.role),
      ['active', 'shadow'],
    );
    shadowServes = false;
    m2.observe(metadataFor({ name: 'pitwall-ae', version: '1', drift: HALVES }), ['a'], likeTraining(1));
    assert.deepEqual(
      m2.fleet().map((r) => r.role),
      ['active'],
      'a removed shadow stops reporting',
    );
  });

  it('a new version starts its counts afresh', () => {
    const m = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 10, instance: 'r1', log: silentLogger });
    m.observe(metadataFor({ version: '1', drift: HALVES }), ['a'], likeTraining(1));
    m.observe(metadataFor({ version: '2', drift: HALVES }), ['a', 'b'], likeTraining(2));
    assert.deepEqual(
      m.fleet().map((r) => [r.version, r.windows]),
      [['2', 2]],
    );
  });

  it('the reporter publishes fleet and vehicle records on a compacted topic, in bounded sends', async () => {
    const sent: Array<{ topic: string; messages: Array<{ key: string; value: string }> }> = [];
    const created: unknown[] = [];
    const kafka = {
      producer: () => ({ connect: async () => {}, disconnect: async () => {}, send: async (b: (typeof sent)[number]) => void sent.push(b) }),
      admin: () => ({
        connect: async () => {},
        disconnect: async () => {},
        listTopics: async () => [],
        createTopics: async (o: { topics: unknown[] }) => void created.push(...o.topics),
        fetchTopicMetadata: async () => ({ topics: [{ partitions: [{ leader: 1 }] }] }),
        fetchTopicOffsets: async () => [],
      }),
    };
    const m = createDriftMonitor({ periodMs: 60_000, vehicleWindows: 10, maxVehicles: 2_000, instance: 'r1', log: silentLogger });
    const vectors = likeTraining(1_200);
    m.observe(
      metadataFor({ name: 'pitwall-ae', drift: HALVES }),
      vectors.map((_, i) => `car-${i}`),
      vectors,
    );
    const r = createDriftReporter({ kafka: kafka as never, topic: 'model.drift', partitions: 3, monitor: m, intervalMs: 60_000, log: silentLogger });
    await r.start();
    assert.match(JSON.stringify(created), /"cleanup.policy","value":"compact,delete"/);
    assert.equal(await r.flush(), 1_201);
    assert.deepEqual(
      sent.map((s) => s.messages.length),
      [500, 500, 201],
    );
    assert.equal(sent[0]!.messages[0]!.key, 'fleet/pitwall-ae/active/r1');
    assert.equal(sent[0]!.messages[1]!.key, 'vehicle/car-0');
    await r.close();
  });
});
