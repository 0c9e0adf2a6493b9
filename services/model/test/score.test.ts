import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createAvroCodec, defaultSchemasDir, GROUP_ACTIONS, loadSchemaFile, SENSOR_NAMES } from '@pitwall/common';
import { alertId, buildAlert, minEventsFor, modelWindow, perSensorShare, scoreBatch, topContributors, type AlertRecord } from '../src/score.js';
import { D, linearModel, metadataFor, vectorWith } from '@pitwall/model/testing';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

/** Shares by sensor name -> in SENSOR_NAMES order, as Scored.shares holds them. */
const byIndex = (shares: Record<string, number>): number[] => SENSOR_NAMES.map((s) => shares[s] ?? 0);
const close = (a: number, b: number, eps = 1e-5): void => assert.ok(Math.abs(a - b) <= eps, `${a} is not within ${eps} of ${b}`);

describe('scoreBatch', () => {
  // A model predicting 0 for every feature: squared error = z^2, so scores are computable by hand.
  const zero = linearModel(0, 0);
  const perfect = linearModel(1, 0);
  const meta = metadataFor();

  const table: Array<{ name: string; model: tf.LayersModel; norm?: { mean: number; std: number }; values: Record<string, number>; score: number; shares: Record<string, number> }> = [
    { name: 'all features at the mean', model: zero, values: {}, score: 0, shares: {} },
    { name: 'one sensor 2 sd off: 6 features x 4 / 108', model: zero, values: { coolant_temp: 2 }, score: 24 / D, shares: { coolant_temp: 1 } },
    { name: 'two sensors: shares 24/30 and 6/30', model: zero, values: { coolant_temp: 2, speed: 1 }, score: 30 / D, shares: { coolant_temp: 0.8, speed: 0.2 } },
    {
      name: 'normalization applied before the model',
      model: zero,
      norm: { mean: 10, std: 2 },
      values: { tire_pressure_1_1: 14, battery_voltage: 4 },
      score: (6 * 4 + 6 * 9) / D,
      shares: { tire_pressure_1_1: 24 / 78, battery_voltage: 54 / 78 },
    },
    { name: 'perfect reconstruction scores 0 whatever the input', model: perfect, values: { coolant_temp: 50, speed: -3 }, score: 0, shares: {} },
  ];
  for (const t of table) {
    it(t.name, () => {
      const m = t.norm ? metadataFor({ normalization: { mean: Array(D).fill(t.norm.mean) as number[], std: Array(D).fill(t.norm.std) as number[] } }) : meta;
      const base = t.norm ? t.norm.mean : 0;
      const v = vectorWith(Object.fromEntries(SENSOR_NAMES.map((s) => [s, t.values[s] ?? base])));
      const [got] = scoreBatch(t.model, m, [v]);
      close(got!.score, t.score);
      for (const s of SENSOR_NAMES) close(perSensorShare(got!)[s]!, t.shares[s] ?? 0);
    });
  }

  it('scores many vectors in one call, in order', () => {
    const got = scoreBatch(zero, meta, [vectorWith({ speed: 1 }), vectorWith({}), vectorWith({ speed: 3 })]);
    assert.deepEqual(
      got.map((s) => Number((s.score * D).toFixed(4))),
      [6, 0, 54],
    );
  });

  it('leaves no tensors behind', () => {
    const vectors = Array.from({ length: 50 }, (_, i) => vectorWith({ coolant_temp: i % 7, speed: -i }));
    scoreBatch(zero, meta, vectors); // warm-up: the first predict may build lasting state
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) scoreBatch(zero, meta, vectors);
    assert.equal(tf.memory().numTensors, before);
  });

  it('z-scores exactly as tf sub and div in float32 would', () => {
    // Awkward means and stds so that float32 rounding matters; the zero model reconstructs 0, so
    // every squared error is z^2 and the score is their sum in feature order over D.
    let seed = 7;
    const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const mean = Array.from({ length: D }, () => (rand() - 0.5) * 1e3 + 1 / 3);
    const std = Array.from({ length: D }, () => rand() * 17 + 0.1);
    const m = metadataFor({ normalization: { mean, std } });
    const vectors = Array.from({ length: 20 }, () => Float32Array.from({ length: D }, () => (rand() - 0.5) * 2e3));
    const got = scoreBatch(zero, m, vectors);
    const sq = tf.tidy(() => {
      const z = tf
        .tensor2d(vectors.map((v) => Array.from(v)))
        .sub(tf.tensor1d(mean))
        .div(tf.tensor1d(std));
      return tf.zerosLike(z).squaredDifference(z).arraySync() as number[][];
    });
    sq.forEach((row, i) => {
      let total = 0;
      for (const e of row) total += e;
      assert.equal(got[i]!.score, total / D);
    });
  });

  it('refuses vectors of the wrong width and accepts an empty batch', () => {
    assert.deepEqual(scoreBatch(zero, meta, []), []);
    assert.throws(() => scoreBatch(zero, meta, [new Float32Array(D - 1)]), /vector 0 has 107 features, the model expects 108/);
  });
});

describe('buildAlert', () => {
  const key = { vehicle_id: 'car-0007', window_start: 1_735_689_600_000, window_end: 1_735_689_610_000 };
  const model = { name: 'pitwall-ae', version: '1', threshold: 0.5 };
  const shares = { coolant_temp: 0.5, speed: 0.1, tire_pressure_1_1: 0.25, battery_voltage: 0.15 };
  const scored = { score: 2.5, shares: SENSOR_NAMES.map((s) => shares[s as keyof typeof shares] ?? 0) };

  it('top 3 contributors by share, with component and action of their group', () => {
    const alert = buildAlert(key, scored, model, 1_735_689_615_123);
    assert.deepEqual(
      alert.contributors.map((c) => [c.sensor, c.share]),
      [
        ['coolant_temp', 0.5],
        ['tire_pressure_1_1', 0.25],
        ['battery_voltage', 0.15],
      ],
    );
    assert.equal(alert.contributors[0]!.component, GROUP_ACTIONS.cooling.component);
    assert.equal(alert.contributors[1]!.action, GROUP_ACTIONS.tires.action);
    assert.equal(alert.contributors[2]!.component, GROUP_ACTIONS.battery.component);
    assert.ok(alert.contributors.reduce((a, c) => a + c.share, 0) <= 1);
    assert.equal(alert.score, 2.5);
    assert.equal(alert.threshold, 0.5);
    assert.equal(alert.created_at, 1_735_689_615_123);
    assert.equal(alert.model_version, '1');
  });

  it('shares of a real scoring sum to at most 1', () => {
    const [s] = scoreBatch(linearModel(0.3, 0.1), metadataFor(), [vectorWith({ coolant_temp: 3, speed: 2, throttle_pos: -1, current_draw: 1 })]);
    const alert = buildAlert(key, s!, model, 0);
    assert.equal(alert.contributors.length, 3);
    const sum = alert.contributors.reduce((a, c) => a + c.share, 0);
    assert.ok(sum > 0 && sum <= 1 + 1e-9, `sum ${sum}`);
    assert.ok(alert.contributors.every((c, i, all) => i === 0 || all[i - 1]!.share >= c.share));
  });

  it('ids are deterministic: sha256 of vehicle|start|end|model|version, 32 hex chars', () => {
    const a = buildAlert(key, scored, model, 1);
    const b = buildAlert(key, { ...scored, score: 9 }, model, 2);
    assert.equal(a.alert_id, b.alert_id);
    assert.match(a.alert_id, /^[0-9a-f]{32}$/);
    const expected = createHash('sha256').update('car-0007|1735689600000|1735689610000|pitwall-ae|1').digest('hex').slice(0, 32);
    assert.equal(a.alert_id, expected);
    assert.notEqual(alertId(key, 'pitwall-ae', '2'), a.alert_id);
    assert.notEqual(alertId({ ...key, window_start: key.window_start + 10_000 }, 'pitwall-ae', '1'), a.alert_id);
  });

  it('the largest shares first, at most `limit`, as a sort of all sensors gives them', () => {
    // Reference: the rule written as a sort, over random shares with ties and zeros.
    const reference = (shares: Record<string, number>, limit: number): string[] =>
      SENSOR_NAMES.map((sensor, order) => ({ sensor, order, share: shares[sensor] ?? 0 }))
        .filter((c) => c.share > 0)
        .sort((a, b) => b.share - a.share || a.order - b.order)
        .slice(0, limit)
        .map((c) => `${c.sensor}:${c.share}`);
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 500; run++) {
      const shares = Object.fromEntries(SENSOR_NAMES.map((s) => [s, next() < 0.3 ? 0 : Math.round(next() * 4) / 4]));
      const limit = 1 + (run % 5);
      assert.deepEqual(
        topContributors(byIndex(shares), limit).map((c) => `${c.sensor}:${c.share}`),
        reference(shares, limit),
        JSON.stringify({ shares, limit }),
      );
    }
  });

  it('no contributors when there is no error, and ties keep sensor order', () => {
    assert.deepEqual(topContributors(SENSOR_NAMES.map(() => 0)), []);
    const tie = topContributors(byIndex({ speed: 0.5, coolant_temp: 0.5 }));
    assert.deepEqual(
      tie.map((c) => c.sensor),
      ['coolant_temp', 'speed'],
    );
  });

  it('is a valid maintenance.alerts record (schemas/alert/v1.avsc)', async () => {
    const schema = await loadSchemaFile(defaultSchemasDir(), 'alert', 1);
    const codec = await createAvroCodec<AlertRecord>(
      { setCompatibility: async () => {}, register: async () => 1, lookup: async () => 1, getSchema: async () => schema },
      'maintenance.alerts-value',
      schema,
    );
    const alert = buildAlert(key, scored, model, 1_735_689_615_123);
    // Decoded records are instances of avsc's generated classes; compare their plain form.
    assert.deepEqual(JSON.parse(JSON.stringify(await codec.decode(codec.encode(alert)))), alert);
  });
});

describe('modelWindow: the readings a window needs', () => {
  const table: Array<{
    name: string;
    window: { sizeMs: number; rateHz: number; minReadings?: number; minCoverage?: number };
    coverage?: number;
    want: { expectedReadings: number; minReadings: number; source: string };
  }> = [
    { name: 'old metadata: 10 s at 1 Hz, default coverage 0.8', window: { sizeMs: 10_000, rateHz: 1 }, want: { expectedReadings: 10, minReadings: 8, source: 'default' } },
    { name: 'old metadata with SCORING_MIN_COVERAGE 0.5', window: { sizeMs: 10_000, rateHz: 1 }, coverage: 0.5, want: { expectedReadings: 10, minReadings: 5, source: 'default' } },
    { name: 'coverage 0 still needs one reading', window: { sizeMs: 10_000, rateHz: 1 }, coverage: 0, want: { expectedReadings: 10, minReadings: 1, source: 'default' } },
    {
      name: 'declared coverage beats the scorer default',
      window: { sizeMs: 120_000, rateHz: 0.1, minCoverage: 0.75 },
      coverage: 0.5,
      want: { expectedReadings: 12, minReadings: 9, source: 'minCoverage' },
    },
    { name: 'declared minReadings beats both', window: { sizeMs: 120_000, rateHz: 0.1, minReadings: 10, minCoverage: 0.5 }, want: { expectedReadings: 12, minReadings: 10, source: 'minReadings' } },
  ];
  for (const t of table) {
    it(t.name, () => {
      const w = modelWindow({ window: t.window }, t.coverage);
      assert.equal(w.expectedReadings, t.want.expectedReadings);
      assert.equal(w.minReadings, t.want.minReadings);
      assert.equal(w.source, t.want.source);
      assert.equal(minEventsFor({ window: t.window }, t.coverage ?? 0.8), t.want.minReadings);
    });
  }
});
