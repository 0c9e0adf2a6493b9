import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { computeFeatures, PITWALL_PROFILE, SENSOR_NAMES, SENSORS } from '@pitwall/common';
import type { Reading } from '@pitwall/simulator';
import { linearModel, metadataFor } from '@pitwall/model/testing';
import { evaluateCsv, excessOf, formatCsvReport, spearman } from '../src/csv-evaluation.js';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

describe('spearman', () => {
  const table: Array<[string, number[], number[], number | null]> = [
    ['same order', [1, 2, 3, 4], [10, 20, 30, 40], 1],
    ['reversed', [1, 2, 3, 4], [4, 3, 2, 1], -1],
    ['monotone, not linear', [1, 2, 3, 4], [1, 10, 100, 1000], 1],
    ['ties averaged', [1, 1, 2], [1, 2, 3], Math.sqrt(3) / 2],
    ['a constant side', [1, 2, 3], [5, 5, 5], null],
    ['one point', [1], [2], null],
  ];
  for (const [name, a, b, want] of table) {
    it(name, () => {
      const got = spearman(a, b);
      if (want === null) assert.equal(got, null);
      else assert.ok(Math.abs(got! - want) < 1e-12, `${got} != ${want}`);
    });
  }
});

describe('excessOf', () => {
  it('is 0 inside the range and counts spans outside it', () => {
    assert.equal(excessOf(50, [0, 100]), 0);
    assert.equal(excessOf(-50, [0, 100]), 0.5);
    assert.equal(excessOf(330, [-40, 130]), 200 / 170);
  });
});

describe('evaluateCsv', () => {
  // Mid-range values for every sensor; a car deviates from them where the test says.
  const base = Object.fromEntries(SENSORS.map((s) => [s.name, s.kind === 'int' ? Math.round((s.plausible[0] + s.plausible[1]) / 2) : (s.plausible[0] + s.plausible[1]) / 2]));
  const car = (id: string, seconds: number, at: (t: number) => Record<string, number | undefined> = () => ({})): Reading[] =>
    Array.from({ length: seconds }, (_, t) => ({
      vehicleId: id,
      ts: 1_000_000 + t * 1000,
      values: { ...base, ...(Object.fromEntries(Object.entries(at(t)).filter(([, v]) => v !== undefined)) as Record<string, number>) },
    }));
  const readings = [
    ...car('a', 40),
    // Coolant at 500 °C (implausible) in the third window: alerts, led by coolant.
    ...car('b', 40, (t) => (t >= 20 && t < 30 ? { coolant_temp: 500 } : {})),
    // A battery below 0 %: implausible but a small deviation for the model; 35 s: the last window is partial.
    ...car('c', 35, () => ({ battery_percentage: -5 })),
    // Speed 290 km/h: plausible, far from the training mean: alerts.
    ...car('d', 40, (t) => (t >= 10 && t < 20 ? { speed: 290 } : {})),
  ];
  // Model predicts 0, the normalization's mean is the baseline window, std 1: score = mean squared deviation.
  const mean = Array.from(computeFeatures(Array.from({ length: 10 }, (_, j) => ({ ts: j * 1000, values: SENSOR_NAMES.map((n) => base[n]!) }))));
  const meta = metadataFor({ threshold: 500, normalization: { mean, std: mean.map(() => 1) }, fleetProfile: 'pitwall' });

  it('reports per car what the model found next to the implausible readings, and how they agree', () => {
    const model = linearModel(0, 0);
    const r = evaluateCsv(model, meta, readings, PITWALL_PROFILE, 'fleet.csv');
    model.dispose();
    assert.equal(r.readings, 155);
    assert.deepEqual(r.window, { sizeMs: 10_000, minReadings: 8 });
    assert.equal(r.windows, 15);
    assert.equal(r.partialWindows, 1);
    assert.deepEqual(
      r.cars.map((c) => [c.vehicleId, c.windows, c.partialWindows, c.alertWindows]),
      [
        ['b', 4, 0, 1],
        ['d', 4, 0, 1],
        ['c', 3, 1, 0],
        ['a', 4, 0, 0],
      ],
    );
    const b = r.cars[0]!;
    assert.equal(b.worst!.contributors[0]!.sensor, 'coolant_temp');
    assert.equal(b.firstAlertTs, 1_000_000 + 30_000);
    assert.deepEqual(b.implausible, [{ sensor: 'coolant_temp', unit: '°C', readings: 10, worst: 500, plausible: [-40, 130], excess: 370 / 170 }]);
    assert.deepEqual(
      r.cars[2]!.implausible.map((x) => [x.sensor, x.readings, x.worst]),
      [['battery_percentage', 35, -5]],
    );
    assert.deepEqual(r.agreement, {
      cars: 4,
      alerted: 2,
      implausible: 2,
      both: 1,
      alertedOnly: 1,
      implausibleOnly: 1,
      neither: 1,
      alertsOnImplausibleSensor: 1,
      rankCorrelation: r.agreement.rankCorrelation,
    });
    assert.ok(r.agreement.rankCorrelation! > 0);
    const text = formatCsvReport(r, 2);
    assert.match(text, /^fleet\.csv in profile pitwall, scored with test-ae v1/);
    assert.match(text, /cars alerted 2, with implausible readings 2: both 1, alerted only 1, implausible only 1, neither 1/);
    assert.match(text, /\nb +40 +4 +1 .*coolant_temp \d+%.*coolant_temp 10x \(500 °C\)/);
    assert.match(text, /\.\.\. 2 more cars in the JSON report$/);
  });

  it('is deterministic', () => {
    const model = linearModel(0, 0);
    const a = JSON.stringify(evaluateCsv(model, meta, readings, PITWALL_PROFILE, 'x'));
    const b = JSON.stringify(evaluateCsv(model, meta, [...readings].reverse(), PITWALL_PROFILE, 'x'));
    model.dispose();
    assert.equal(a, b);
  });
});
