import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import {
  checkFleetOptions,
  DEFAULT_FLEET_EVALUATION,
  evaluateFleet,
  formatReport,
  groundTruthFor,
  summarize,
  type FleetEvaluationOptions,
  type GroundTruth,
  type ScoredWindow,
} from '../src/evaluation.js';
import { scoreVectors } from '../src/replay.js';
import { fitNormalization, fleetWindows, TRAINING_EPOCH_TS } from '../src/training.js';
import { defaultModelsDir } from '@pitwall/model';
import { linearModel, metadataFor, withTmpDir } from '@pitwall/model/testing';

const run = promisify(execFile);

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const MIN = 60_000;
/** Windows of 10 s for a car from t0, scores given per window. */
const series = (vehicleId: string, t0: number, scores: number[]): ScoredWindow[] => scores.map((score, i) => ({ vehicleId, windowStart: t0 + i * 10_000, windowEnd: t0 + (i + 1) * 10_000, score }));

describe('summarize', () => {
  // Threshold 1. Car f1 (tire_leak) fails at 30 s, ramp 20 s; f2 (tire_leak) at 30 s, never detected;
  // f3 (coolant) at 20 s; h1, h2 healthy.
  const truth: GroundTruth[] = [
    { vehicleId: 'f1', mode: 'tire_leak', onsetTs: 30_000, rampMs: 20_000 },
    { vehicleId: 'f2', mode: 'tire_leak', onsetTs: 30_000, rampMs: 20_000 },
    { vehicleId: 'f3', mode: 'coolant_overheat', onsetTs: 20_000, rampMs: 0 },
  ];
  const windows = [
    // f1: window [0,10) alerts before onset (false); [20,30) ends at onset (false, healthy time);
    // [30,40) below; [40,50) alerts (first true alert, end 50 s -> lead 20 s, severity 1); [50,60) alerts.
    ...series('f1', 0, [2, 0.1, 5, 0.5, 3, 4]),
    ...series('f2', 0, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
    // f3: [20,30) straddles nothing (starts at onset) and alerts: lead 10 s.
    ...series('f3', 0, [0.1, 0.1, 9, 9, 9, 9]),
    ...series('h1', 0, [0.1, 0.1, 0.1, 0.1, 0.1, 1.5]),
    ...series('h2', 0, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
  ];
  const table: Array<{ name: string; order: (w: ScoredWindow[]) => ScoredWindow[] }> = [
    { name: 'in time order', order: (w) => w },
    { name: 'in reverse order', order: (w) => [...w].reverse() },
  ];
  for (const { name, order } of table) {
    it(`counts true and false alerts per mode and overall (${name})`, () => {
      const r = summarize(truth, order(windows), 1, ['tire_leak', 'coolant_overheat']);
      assert.deepEqual(r.healthy, { cars: 2, windows: 12, hours: 120_000 / 3_600_000, falseAlerts: 1, maxScore: 1.5 });
      const tire = r.modes[0]!;
      assert.equal(tire.mode, 'tire_leak');
      assert.equal(tire.cars, 2);
      assert.equal(tire.carsDetected, 1);
      assert.equal(tire.recall, 0.5);
      assert.equal(tire.trueAlerts, 2);
      // f1's two pre-onset alerts ([0,10) and [20,30)) + h1's one.
      assert.equal(tire.falseAlerts, 3);
      assert.equal(tire.precision, 2 / 5);
      // Full severity from 50 s: f1 [50,60) alerts, f2 [50,60) does not.
      assert.equal(tire.fullSeverityWindows, 2);
      assert.equal(tire.fullSeverityWindowRecall, 0.5);
      // Healthy time: 3 windows of f1, 3 of f2, 12 of healthy cars.
      assert.equal(tire.healthyHours, (18 * 10_000) / 3_600_000);
      assert.equal(tire.falseAlertsPerVehicleHour, 3 / tire.healthyHours);
      assert.deepEqual(tire.leadTimeS, { median: 20, p90: 20, min: 20, max: 20 });
      assert.equal(tire.medianSeverityAtFirstAlert, 1);
      assert.deepEqual(
        tire.perCar.map((c) => [c.vehicleId, c.trueAlerts, c.falseAlertsBeforeOnset, c.firstAlertTs, c.leadTimeS]),
        [
          ['f1', 2, 2, 50_000, 20],
          ['f2', 0, 0, null, null],
        ],
      );
      const coolant = r.modes[1]!;
      assert.equal(coolant.recall, 1);
      assert.equal(coolant.precision, 4 / 5);
      assert.deepEqual(coolant.leadTimeS, { median: 10, p90: 10, min: 10, max: 10 });
      assert.equal(r.overall.cars, 3);
      assert.equal(r.overall.carsDetected, 2);
      assert.equal(r.overall.trueAlerts, 6);
      assert.equal(r.overall.falseAlerts, 3);
      assert.equal(r.overall.precision, 6 / 9);
      assert.deepEqual(r.overall.leadTimeS, { median: 10, p90: 20, min: 10, max: 20 });
    });
  }

  it('reports no precision when nothing alerts', () => {
    const r = summarize(
      truth,
      windows.map((w) => ({ ...w, score: 0 })),
      1,
      ['tire_leak'],
    );
    assert.equal(r.modes[0]!.precision, null);
    assert.equal(r.modes[0]!.recall, 0);
    assert.deepEqual(r.modes[0]!.leadTimeS, { median: null, p90: null, min: null, max: null });
  });

  it('a window the stuck-sensor detector flagged alerts below the threshold', () => {
    const flagged = series('h', 0, [0.1, 0.1]).map((w, i) => ({ ...w, stuck: i === 1 }));
    assert.equal(summarize([], flagged, 1, ['tire_leak']).healthy.falseAlerts, 1);
  });

  it('a score equal to the threshold does not alert', () => {
    const r = summarize([], series('h', 0, [1, 1.0000001]), 1, ['tire_leak']);
    assert.equal(r.healthy.falseAlerts, 1);
  });
});

describe('groundTruthFor', () => {
  it('places failing cars after the healthy ones with staggered onsets', () => {
    const o: FleetEvaluationOptions = { ...DEFAULT_FLEET_EVALUATION, healthyCars: 3, carsPerMode: 2, modes: ['tire_leak', 'faulty_sensor'], onsetMs: 5 * MIN, onsetSpreadMs: 4 * MIN };
    assert.deepEqual(groundTruthFor(o, 1000), [
      { vehicleId: 'eval-0004', mode: 'tire_leak', onsetTs: 1000 + 5 * MIN, rampMs: o.rampMs },
      { vehicleId: 'eval-0005', mode: 'tire_leak', onsetTs: 1000 + 7 * MIN, rampMs: o.rampMs },
      { vehicleId: 'eval-0006', mode: 'faulty_sensor', onsetTs: 1000 + 5 * MIN, rampMs: o.rampMs, sensor: 'coolant_temp' },
      { vehicleId: 'eval-0007', mode: 'faulty_sensor', onsetTs: 1000 + 7 * MIN, rampMs: o.rampMs, sensor: 'battery_percentage' },
    ]);
  });
});

describe('checkFleetOptions', () => {
  const table: Array<[string, Partial<FleetEvaluationOptions>, RegExp]> = [
    ['no cars per mode', { carsPerMode: 0 }, /carsPerMode/],
    ['unknown mode', { modes: ['flat' as never] }, /unknown failure mode "flat"/],
    ['mode twice', { modes: ['tire_leak', 'tire_leak'] }, /twice/],
    ['onset after the end', { durationMs: 20 * MIN, onsetMs: 15 * MIN, onsetSpreadMs: 10 * MIN }, /before the end/],
    ['no healthy window before onset', { onsetMs: 5000 }, /healthy window/],
    ['bad threshold', { threshold: -1 }, /threshold/],
  ];
  for (const [name, patch, re] of table) {
    it(`refuses ${name}`, () => assert.throws(() => checkFleetOptions({ ...DEFAULT_FLEET_EVALUATION, ...patch }), re));
  }
  it('accepts the defaults', () => assert.doesNotThrow(() => checkFleetOptions(DEFAULT_FLEET_EVALUATION)));
});

describe('evaluateFleet', () => {
  // A model predicting the mean: score = mean squared z-score, normalization from a small healthy fleet.
  const healthy = fleetWindows({ cars: 3, seed: 9, idPrefix: 'n', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 5 * MIN });
  const norm = fitNormalization(healthy.map((w) => w.vector));
  // Threshold as training calibrates it: 1.5 x the highest healthy score.
  const probe = linearModel(0, 0);
  const healthyMax = Math.max(
    ...scoreVectors(
      probe,
      metadataFor({ normalization: norm }),
      healthy.map((w) => w.vector),
    ).map((s) => s.score),
  );
  probe.dispose();
  const meta = metadataFor({ normalization: norm, threshold: 1.5 * healthyMax });
  const o: FleetEvaluationOptions = {
    ...DEFAULT_FLEET_EVALUATION,
    healthyCars: 2,
    carsPerMode: 2,
    durationMs: 8 * MIN,
    onsetMs: 3 * MIN,
    onsetSpreadMs: 1 * MIN,
    rampMs: 1 * MIN,
  };

  it('is deterministic: the same options give the same JSON', () => {
    const model = linearModel(0, 0);
    const a = evaluateFleet(model, meta, o);
    const b = evaluateFleet(model, meta, o);
    model.dispose();
    assert.equal(JSON.stringify(a), JSON.stringify(b));
    assert.equal(a.windows, (2 + 5 * 2) * 48);
    assert.equal(a.modes.length, 5);
    assert.equal(a.examples.length, 5);
    assert.equal(a.examples[0]!.points.length, 48);
    assert.equal(a.model.thresholdSource, 'model');
    // Full-severity tire leaks and overheating are far from the healthy mean.
    assert.equal(a.modes.find((m) => m.mode === 'tire_leak')!.recall, 1);
    assert.equal(a.modes.find((m) => m.mode === 'coolant_overheat')!.recall, 1);
    assert.match(formatReport(a), /^overall\s+10\s+\d+\/10/m);
  });

  it('a threshold override changes what alerts, and says so', () => {
    const model = linearModel(0, 0);
    const low = evaluateFleet(model, meta, { ...o, threshold: 1e-6 });
    const base = evaluateFleet(model, meta, o);
    const seed2 = evaluateFleet(model, meta, { ...o, seed: o.seed + 1 });
    model.dispose();
    assert.equal(low.model.thresholdSource, 'override');
    assert.equal(low.model.threshold, 1e-6);
    assert.equal(low.healthy.falseAlerts, low.healthy.windows);
    assert.ok(low.overall.falseAlerts > base.overall.falseAlerts);
    assert.notDeepEqual(seed2.examples[0]!.points, base.examples[0]!.points, 'the seed changes the fleet');
  });
});

describe('evaluateFleet with the stuck-sensor detector', () => {
  it('catches stuck windows the model alone misses, and reports both', () => {
    const healthy = fleetWindows({ cars: 3, seed: 9, idPrefix: 'n', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 5 * MIN });
    const norm = fitNormalization(healthy.map((w) => w.vector));
    const meta = metadataFor({ normalization: norm, threshold: 50 });
    const model = linearModel(0, 0);
    // Onset after the detector's warm-up (30 windows = 5 min of movement).
    const r = evaluateFleet(model, meta, {
      ...DEFAULT_FLEET_EVALUATION,
      healthyCars: 2,
      carsPerMode: 2,
      modes: ['faulty_sensor'],
      durationMs: 14 * MIN,
      onsetMs: 6 * MIN,
      onsetSpreadMs: MIN,
      rampMs: MIN,
    });
    model.dispose();
    const [before, after] = [r.modelOnly.modes[0]!, r.modes[0]!];
    assert.ok(after.fullSeverityWindowRecall! >= 0.9, `with the detector: ${after.fullSeverityWindowRecall}`);
    assert.ok(before.fullSeverityWindowRecall! < after.fullSeverityWindowRecall!, `model alone: ${before.fullSeverityWindowRecall}`);
    assert.equal(r.stuckSensor.healthyWindows, 0);
    assert.equal(r.healthy.falseAlerts, r.modelOnly.healthy.falseAlerts);
    assert.match(formatReport(r), /^ {2}faulty_sensor +full-sev win [\d.]+% -> [\d.]+%/m);
  });
});

describe('evaluate command line', () => {
  const cli = fileURLToPath(new URL('../bin/evaluation.js', import.meta.url));
  const model = path.join(defaultModelsDir(), 'pitwall-ae', '1');
  const args = ['--model-dir', model, '--healthy-cars', '2', '--cars-per-mode', '1', '--duration', '6', '--onset', '2', '--onset-spread', '1', '--ramp', '1'];

  it('writes the same evaluation.json and picture for the same flags', async () => {
    await withTmpDir(async (dir) => {
      const a = await run(process.execPath, [cli, ...args, '--out', path.join(dir, 'a')]);
      await run(process.execPath, [cli, ...args, '--out', path.join(dir, 'b')]);
      const [ja, jb] = await Promise.all(['a', 'b'].map((d) => readFile(path.join(dir, d, 'evaluation.json'), 'utf8')));
      assert.equal(ja, jb);
      assert.deepEqual(await readFile(path.join(dir, 'a', 'evaluation.png')), await readFile(path.join(dir, 'b', 'evaluation.png')));
      const report = JSON.parse(ja!);
      assert.equal(report.schema, 'pitwall.evaluation.v1');
      assert.deepEqual(report.model, { name: 'pitwall-ae', version: '1', threshold: 1.40106, thresholdSource: 'model', modelThreshold: 1.40106 });
      assert.equal(report.windows, 7 * 36);
      assert.equal(a.stdout, await readFile(path.join(dir, 'a', 'evaluation.txt'), 'utf8'));
      const other = JSON.parse((await run(process.execPath, [cli, ...args, '--seed', '43', '--json', '--no-png', '--out', path.join(dir, 'c')])).stdout);
      assert.notDeepEqual(other.examples, report.examples);
    });
  });

  it('names the flag it refuses', async () => {
    await assert.rejects(run(process.execPath, [cli, ...args, '--ramp', 'soon']), (err: Error & { stderr: string }) => /--ramp: invalid value "soon"/.test(err.stderr));
    await assert.rejects(run(process.execPath, [cli, '--healthy-cars', '2']), (err: Error & { stderr: string }) => /exactly one of --model/.test(err.stderr));
  });
});
