import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { computeFeatures, FEATURE_NAMES, loadFleetProfile, PITWALL_PROFILE, SENSOR_NAMES, windowDef } from '@pitwall/common';
import { CARDATA_FAILING, CARDATA_HEALTHY } from '@pitwall/common/testing';
import { createFleet, formatCsv, parseCsv, type Reading } from '@pitwall/simulator';
import { loadModelDir } from '@pitwall/model';
import { createWindower, csvWindows, estimateRateHz, fitNormalization, percentile, readingsInProfile, stdFloors, trainModel, TRAINING_EPOCH_TS, type TrainOptions } from '../src/training.js';
import { withTmpDir } from '@pitwall/model/testing';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const reading = (vehicleId: string, ts: number, x: number): Reading => ({
  vehicleId,
  ts,
  values: Object.fromEntries(SENSOR_NAMES.map((s, i) => [s, x + i])),
});

describe('createWindower', () => {
  const def = windowDef(10_000);
  const table: Array<{ name: string; readings: Reading[]; minEvents: number; fromTs?: number; toTs?: number; want: Array<[string, number, number]> }> = [
    {
      name: 'tumbling 10 s windows per vehicle, aligned to the epoch',
      readings: [0, 1000, 9999, 10_000, 15_000].map((ts, i) => reading('a', 1_000_000 + ts, i)),
      minEvents: 1,
      want: [
        ['a', 1_000_000, 3],
        ['a', 1_010_000, 2],
      ],
    },
    {
      name: 'vehicles are independent',
      readings: [reading('a', 5000, 1), reading('b', 5000, 2), reading('b', 12_000, 3), reading('a', 6000, 4)],
      minEvents: 1,
      want: [
        ['b', 0, 1],
        ['a', 0, 2],
        ['b', 10_000, 1],
      ],
    },
    {
      name: 'windows with too few readings are dropped',
      readings: [reading('a', 0, 1), reading('a', 1000, 1), reading('a', 10_000, 1)],
      minEvents: 2,
      want: [['a', 0, 2]],
    },
    {
      name: 'windows reaching outside [fromTs, toTs) are dropped',
      readings: [0, 10_000, 20_000, 30_000].map((ts) => reading('a', ts, 0)),
      minEvents: 1,
      fromTs: 10_000,
      toTs: 30_000,
      want: [
        ['a', 10_000, 1],
        ['a', 20_000, 1],
      ],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const w = createWindower(def, { minEvents: t.minEvents, fromTs: t.fromTs, toTs: t.toTs });
      for (const r of t.readings) w.push(r);
      const got = w.flush().map((x) => [x.vehicleId, x.windowStart, x.events]);
      assert.deepEqual(got.sort(), t.want.sort());
    });
  }

  it('features equal computeFeatures of the window readings (the serving computation)', () => {
    const readings = [3000, 1000, 2000].map((ts, i) => reading('a', ts, i * 2.5));
    const w = createWindower(def, { minEvents: 1 });
    for (const r of [...readings].sort((a, b) => a.ts - b.ts)) w.push(r);
    const [win] = w.flush();
    const direct = computeFeatures(readings.map((r) => ({ ts: r.ts, values: SENSOR_NAMES.map((s) => r.values[s]!) })));
    assert.deepEqual(Array.from(win!.vector), Array.from(Float32Array.from(direct)));
  });

  it('refuses readings that go back in time', () => {
    const w = createWindower(def, { minEvents: 1 });
    w.push(reading('a', 25_000, 0));
    assert.throws(() => w.push(reading('a', 5_000, 0)), /go back in time/);
  });

  it('csvWindows sorts CSV readings per vehicle first', () => {
    const readings = [12_000, 2_000, 1_000, 11_000, 3_000, 14_000, 13_000, 4_000, 15_000, 0].map((ts) => reading('a', ts, ts / 1000));
    assert.deepEqual(
      csvWindows(readings).map((x) => [x.windowStart, x.events]),
      [
        [0, 5],
        [10_000, 5],
      ],
    );
  });
});

describe('normalization', () => {
  it('z-score parameters with the std floored per sensor', () => {
    const a = new Float32Array(FEATURE_NAMES.length).fill(5);
    const b = new Float32Array(FEATURE_NAMES.length).fill(5);
    a[0] = 1;
    b[0] = 3;
    const { mean, std } = fitNormalization([a, b]);
    assert.equal(mean[0], 2);
    assert.equal(std[0], 1);
    assert.equal(mean[1], 5);
    // Constant feature: std is the floor, 1e-4 of coolant_temp's plausible span (170).
    assert.equal(std[1], Number((0.017).toPrecision(8)));
    assert.ok(stdFloors().every((f) => f > 0));
  });

  it('percentile', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.deepEqual([percentile(s, 50), percentile(s, 99), percentile(s, 100), percentile(s, 0)], [5, 10, 10, 1]);
  });
});

describe('trainModel', () => {
  const opts = (outDir: string, version: string): TrainOptions => ({
    cars: 4,
    hours: 0.05,
    seed: 3,
    epochs: 2,
    batchSize: 32,
    learningRate: 0.002,
    hidden: [16, 4],
    holdoutCars: 2,
    holdoutHours: 0.05,
    thresholdFactor: 1.5,
    evaluation: { healthyCars: 2, carsPerMode: 1, warmupMs: 60_000, rampMs: 30_000, fullSeverityMs: 60_000 },
    outDir,
    name: 'tiny-ae',
    version,
    createdAt: '2025-01-01T00:00:00.000Z',
  });

  it('a short run writes a loadable, deterministic model directory', async () => {
    await withTmpDir(async (out) => {
      const a = await trainModel(opts(out, '1'));
      const b = await trainModel(opts(out, '2'));
      assert.equal(a.dir, path.join(out, 'tiny-ae', '1'));
      const loaded = await loadModelDir(a.dir);
      const meta = loaded.metadata;
      assert.equal(meta.name, 'tiny-ae');
      assert.equal(meta.version, '1');
      assert.deepEqual(meta.features, FEATURE_NAMES);
      assert.deepEqual(meta.window, { sizeMs: 10_000, rateHz: 1, minReadings: 8, minCoverage: 0.8 });
      assert.equal(meta.fleetProfile, 'pitwall');
      // 4 cars x 3 minutes = 18 complete windows each.
      assert.deepEqual(meta.trainingData, { source: 'simulator', cars: 4, seed: 3, fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 180_000, windows: 72 });
      assert.ok(meta.threshold > 0 && Number.isFinite(meta.threshold));
      assert.ok(Math.abs(meta.threshold - meta.trainingMetrics.healthyScoreMax * 1.5) < 1e-4 * meta.threshold);
      assert.ok(meta.trainingMetrics.healthyScoreP50 <= meta.trainingMetrics.healthyScoreP99);
      assert.ok(Number.isFinite(meta.trainingMetrics.finalLoss) && Number.isFinite(meta.trainingMetrics.valLoss));
      assert.deepEqual(Object.keys(meta.groups).sort(), ['battery', 'chassis', 'cooling', 'drivetrain', 'firmware', 'intake', 'tires']);
      assert.equal(a.evaluation?.modes.length, 5);
      // Same options, same seed: identical weights and threshold.
      assert.deepEqual(await readFile(path.join(a.dir, 'weights.bin')), await readFile(path.join(b.dir, 'weights.bin')));
      assert.equal(b.metadata.threshold, meta.threshold);
      const x = tf.randomNormal([3, FEATURE_NAMES.length], 0, 1, 'float32', 5);
      assert.deepEqual((loaded.model.predict(x) as tf.Tensor).arraySync(), (a.model.predict(x) as tf.Tensor).arraySync());
      tf.dispose(x);
      for (const m of [a.model, b.model, loaded.model]) m.dispose();
    });
  });

  it('trains from CSV readings, holding out whole cars', async () => {
    const fleet = createFleet({ cars: 5, seed: 9, idPrefix: 'csv' });
    const readings: Reading[] = [];
    for (let ts = TRAINING_EPOCH_TS; ts < TRAINING_EPOCH_TS + 120_000; ts += 1000) readings.push(...fleet.tick(ts));
    // Through the text format, as the CLI reads it.
    const parsed = parseCsv(formatCsv(readings));
    await withTmpDir(async (out) => {
      const r = await trainModel({ ...opts(out, '1'), evaluation: false, csv: { readings: parsed, source: '/data/fleet.csv' } });
      assert.equal(r.metadata.trainingData.source, 'csv:fleet.csv');
      assert.equal(r.metadata.trainingData.cars, 4);
      assert.equal(r.metadata.trainingData.windows, 4 * 12);
      assert.match(r.metadata.thresholdMethod, /1 held-out CSV cars, 12 windows/);
      r.model.dispose();
    });
  });
});

describe('CSV readings in a fleet profile', () => {
  const cardata = loadFleetProfile('cardata-v1', 'test');

  it("converts with ingest's conversion: psi to kPa (rounded), fraction to %, the rest kept", () => {
    const [ok, sick] = readingsInProfile(
      [
        { vehicleId: 'car1', ts: 0, values: { ...CARDATA_HEALTHY } },
        { vehicleId: 'car2', ts: 0, values: { ...CARDATA_FAILING } },
      ],
      cardata,
    );
    // The same numbers fleet-profile.e2e sees ingest write for these readings.
    assert.equal(ok!.values.tire_pressure_1_1, 221);
    assert.equal(ok!.values.tire_pressure_2_1, 234);
    assert.ok(Math.abs(ok!.values.battery_percentage! - 82.654595) < 1e-9);
    assert.equal(ok!.values.battery_voltage, 246.12367);
    assert.equal(sick!.values.tire_pressure_2_2, 138);
    assert.equal(sick!.values.coolant_temp, 1976.527);
  });

  it('the identity profile keeps the readings; a profile field that is not a column is refused', () => {
    const r = { vehicleId: 'car1', ts: 0, values: { ...CARDATA_HEALTHY } };
    assert.deepEqual(readingsInProfile([r], PITWALL_PROFILE), [r]);
    const { tire_pressure_1_1: _gone, ...lacking } = CARDATA_HEALTHY;
    assert.throws(() => readingsInProfile([{ ...r, values: lacking }], cardata), /the CSV has no column "tire_pressure_1_1"/);
  });

  it('estimateRateHz: 1 / the median interval of consecutive readings of a car', () => {
    const table: Array<{ name: string; ts: Record<string, number[]>; want: number | undefined }> = [
      { name: 'CarData: every 10 s, one 11 s gap', ts: { a: [0, 10_000, 20_000, 31_000, 41_000], b: [5_000, 15_000] }, want: 0.1 },
      { name: '1 Hz', ts: { a: [0, 1000, 2000, 3000] }, want: 1 },
      { name: 'unordered input', ts: { a: [3000, 0, 2000, 1000] }, want: 1 },
      { name: 'one reading per car', ts: { a: [0], b: [0] }, want: undefined },
    ];
    for (const t of table) {
      const readings = Object.entries(t.ts).flatMap(([car, ts]) => ts.map((x) => reading(car, x, 0)));
      assert.equal(estimateRateHz(readings), t.want, t.name);
    }
  });

  it('trains a 120 s model on a 10 s CarData-shaped fleet: the metadata declares the window and the profile', async () => {
    // 5 cars, one reading every 10 s for 12 minutes, in the reference CSV's units with a little noise.
    const readings: Reading[] = [];
    for (let car = 1; car <= 5; car++) {
      for (let k = 0; k < 72; k++) {
        const wobble = Math.sin(car * 7 + k) * 0.01;
        const values = Object.fromEntries(Object.entries(CARDATA_HEALTHY).map(([s, v]) => [s, Number.isInteger(v) ? v : v * (1 + wobble)]));
        readings.push({ vehicleId: `car${car}`, ts: 1_567_606_080_000 + k * 10_000, values });
      }
    }
    await withTmpDir(async (out) => {
      const r = await trainModel({
        cars: 0,
        hours: 0,
        seed: 3,
        epochs: 2,
        batchSize: 8,
        learningRate: 0.002,
        hidden: [16, 4],
        holdoutCars: 0,
        holdoutHours: 0,
        thresholdFactor: 1.5,
        evaluation: { healthyCars: 2, carsPerMode: 1, warmupMs: 60_000, rampMs: 30_000, fullSeverityMs: 60_000 },
        outDir: out,
        name: 'cardata-ae',
        version: '1',
        csv: { readings: readingsInProfile(readings, cardata), source: '/data/cardata.csv' },
        window: { sizeMs: 120_000, rateHz: estimateRateHz(readings)! },
        fleetProfile: cardata.name,
      });
      const loaded = await loadModelDir(r.dir);
      assert.deepEqual(loaded.metadata.window, { sizeMs: 120_000, rateHz: 0.1, minReadings: 10, minCoverage: 0.8 });
      assert.equal(loaded.metadata.fleetProfile, 'cardata-v1');
      assert.match(loaded.metadata.description, /over z-scored 120 s window features/);
      // 12 minutes from a 2 min boundary: 6 full windows per car, 4 training cars.
      assert.equal(loaded.metadata.trainingData.windows, 24);
      assert.equal(r.evaluation, undefined, 'the 1 Hz / 10 s evaluation fleet is skipped');
      r.model.dispose();
      loaded.model.dispose();
    });
  });
});
