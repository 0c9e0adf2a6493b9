/**
 * Training of the anomaly model, as a library (bin/training.ts is the command line around it).
 *
 * Data: healthy telemetry from the seeded simulator, a CSV in the reference format, or a range of
 * Kafka history (kafka-training.ts), cut into the same tumbling event-time windows and aggregated
 * with the same computeFeatures as the windowing service, so training features equal serving
 * features exactly.
 *
 * Model: a dense autoencoder over z-scored features, trained to reconstruct healthy windows; a
 * window's score is the MSE of its normalized reconstruction (scoreBatch, the serving code path).
 *
 * Threshold: calibrated on held-out healthy windows of other cars (another seed), then checked on a
 * separate evaluation fleet with every failure mode injected: full-severity windows must score
 * above it and healthy windows must not.
 *
 * Deterministic: seeded data, seeded initializers, seeded per-epoch shuffle, no dropout, run on the
 * cpu backend. Same options -> same weights.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  applyFleetProfile,
  buildDriftReference,
  FEATURE_NAMES,
  FEATURE_SPEC_ID,
  GROUP_ACTIONS,
  SENSOR_NAMES,
  SENSORS,
  windowDef,
  type DriftReference,
  type FleetProfile,
  type SensorGroup,
  type WindowDef,
} from '@pitwall/common';
import { createFleet, mulberry32, type FailureMode, type FailureSpec, type Reading } from '@pitwall/simulator';
import { createPartitionState } from '@pitwall/windowing';
import { DEFAULT_MIN_COVERAGE, type ModelMetadata, modelWindow, saveModelDir, scoreBatch, type ServableModel } from '@pitwall/model';

export const WINDOW_SIZE_MS = 10_000;
export const RATE_HZ = 1;
/** Event time where generated fleets start: fixed, so a run does not depend on the wall clock. */
export const TRAINING_EPOCH_TS = Date.UTC(2025, 0, 1);

export const ALL_FAILURE_MODES: readonly FailureMode[] = ['tire_leak', 'coolant_overheat', 'engine_vibration', 'battery_degradation', 'faulty_sensor'];
/** Sensors the evaluation breaks for faulty_sensor, one per car in turn. */
export const EVAL_FAULTY_SENSORS: readonly string[] = ['coolant_temp', 'battery_percentage', 'speed', 'tire_pressure_1_1', 'intake_air_temp'];

/** One window's features and where it came from. */
export interface WindowSample {
  vehicleId: string;
  windowStart: number;
  events: number;
  /** computeFeatures output, FEATURE_NAMES order. */
  vector: Float32Array;
}

/**
 * Cuts readings into windows per vehicle with the windowing service's own core
 * (createPartitionState: the same window ranges, closing rule, deduplication and feature math as
 * serving, so training and serving windows cannot drift apart). Readings must arrive in
 * non-decreasing event time per vehicle (the simulator guarantees it; CSV input is sorted first):
 * one behind a closed window is refused. A window is kept if it lies within [fromTs, toTs) and has
 * at least `minEvents` readings.
 */
export function createWindower(def: WindowDef, opts: { fromTs?: number; toTs?: number; minEvents: number }) {
  const state = createPartitionState(def);
  const out: WindowSample[] = [];
  const fromTs = opts.fromTs ?? Number.NEGATIVE_INFINITY;
  const toTs = opts.toTs ?? Number.POSITIVE_INFINITY;
  let offset = 0n;
  const values = new Float64Array(SENSOR_NAMES.length);
  const drain = (): void => {
    for (const w of state.drainClosed()) {
      if (w.start < fromTs || w.end > toTs || w.eventCount < opts.minEvents) continue;
      out.push({ vehicleId: w.vehicleId, windowStart: w.start, events: w.eventCount, vector: Float32Array.from(w.features) });
    }
  };
  return {
    push(r: Reading): void {
      SENSOR_NAMES.forEach((n, i) => (values[i] = r.values[n] ?? Number.NaN));
      if (state.add(r.vehicleId, r.ts, values, offset++) === 'late') throw new RangeError(`readings of ${r.vehicleId} go back in time (${r.ts})`);
      drain();
    },
    /** Emits every open window and returns all windows emitted so far. */
    flush(): WindowSample[] {
      state.closeAll(offset);
      drain();
      return out;
    },
  };
}

export interface FleetWindowsOptions {
  cars: number;
  seed: number;
  idPrefix: string;
  fromTs: number;
  toTs: number;
  failures?: readonly FailureSpec[];
}

/** Simulates a fleet at RATE_HZ over [fromTs, toTs) and returns its complete windows. */
export function fleetWindows(o: FleetWindowsOptions, def: WindowDef = windowDef(WINDOW_SIZE_MS)): WindowSample[] {
  const fleet = createFleet({ cars: o.cars, seed: o.seed, idPrefix: o.idPrefix, failures: o.failures ?? [] });
  const perWindow = Math.round((def.sizeMs * RATE_HZ) / 1000);
  const windower = createWindower(def, { fromTs: o.fromTs, toTs: o.toTs, minEvents: perWindow });
  const step = 1000 / RATE_HZ;
  for (let ts = o.fromTs; ts < o.toTs; ts += step) {
    for (const r of fleet.tick(ts)) windower.push(r);
  }
  return windower.flush();
}

/**
 * Windows of CSV readings (any order); windows with fewer than `minEvents` readings are dropped
 * (default: half of what a 1 Hz fleet fills).
 */
export function csvWindows(readings: readonly Reading[], def: WindowDef = windowDef(WINDOW_SIZE_MS), minEvents = Math.ceil((def.sizeMs * RATE_HZ) / 1000 / 2)): WindowSample[] {
  const sorted = [...readings].sort((a, b) => (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : a.ts - b.ts));
  const windower = createWindower(def, { minEvents });
  for (const r of sorted) windower.push(r);
  return windower.flush();
}

/**
 * The window a model declares (metadata.window): its size, the rate it was trained at, and the
 * readings scoring must see in a window (size x rate x coverage, rounded up; modelWindow).
 */
export function declaredWindow(sizeMs: number, rateHz: number, minCoverage: number): ModelMetadata['window'] {
  return { sizeMs, rateHz, minReadings: modelWindow({ window: { sizeMs, rateHz, minCoverage } }).minReadings, minCoverage };
}

/**
 * CSV readings (columns named as Pitwall's sensors, as the reference CarData CSV has them) in a fleet
 * profile's units, converted to Pitwall's with ingest's own conversion (applyFleetProfile), so a
 * model trained on the CSV sees exactly what the running chain computes from the same readings
 * sent over MQTT with INGEST_FLEET_PROFILE. A profile field that is not a column, or an integer
 * sensor with a fraction in its own unit, is refused with the car and time. `onImplausible` hears of
 * each converted reading with sensors outside the profile's plausible range (ingest's out_of_range).
 */
export function readingsInProfile(readings: readonly Reading[], profile: FleetProfile, onImplausible?: (converted: Reading, sensors: string[]) => void): Reading[] {
  if (profile.identity && !onImplausible) return [...readings];
  return readings.map((r) => {
    const values: Record<string, number> = {};
    const flagged = applyFleetProfile(
      profile,
      (field, integer) => {
        const v = r.values[field];
        if (v === undefined) throw new RangeError(`fleet profile ${profile.name}: the CSV has no column "${field}"`);
        if (integer && !Number.isInteger(v)) throw new RangeError(`${r.vehicleId} at ${r.ts}: ${field} must be an integer, got ${v}`);
        return v;
      },
      values,
      { vehicleId: r.vehicleId },
    );
    const converted = { vehicleId: r.vehicleId, ts: r.ts, values };
    if (flagged.length && onImplausible) onImplausible(converted, flagged);
    return converted;
  });
}

/**
 * Readings per second of a fleet: 1000 / the median interval between consecutive readings of a car
 * (rounded to 3 significant digits; the reference CarData CSV: 10 s, 0.1 Hz). Undefined without two
 * readings of one car.
 */
export function estimateRateHz(readings: readonly Reading[]): number | undefined {
  const byCar = new Map<string, number[]>();
  for (const r of readings) {
    let ts = byCar.get(r.vehicleId);
    if (!ts) byCar.set(r.vehicleId, (ts = []));
    ts.push(r.ts);
  }
  const gaps: number[] = [];
  for (const ts of byCar.values()) {
    ts.sort((a, b) => a - b);
    for (let i = 1; i < ts.length; i++) if (ts[i]! > ts[i - 1]!) gaps.push(ts[i]! - ts[i - 1]!);
  }
  if (gaps.length === 0) return undefined;
  gaps.sort((a, b) => a - b);
  return Number((1000 / gaps[Math.floor(gaps.length / 2)]!).toPrecision(3));
}

/** Standard deviations below this (per sensor: 1e-4 of its plausible span) are raised to it. */
export function stdFloors(): number[] {
  return SENSORS.flatMap((s) => {
    const floor = Math.max(1e-4 * (s.plausible[1] - s.plausible[0]), 1e-6);
    return Array.from({ length: FEATURE_NAMES.length / SENSORS.length }, () => floor);
  });
}

export function fitNormalization(vectors: readonly Float32Array[]): { mean: number[]; std: number[] } {
  const d = FEATURE_NAMES.length;
  const mean = new Float64Array(d);
  const m2 = new Float64Array(d);
  for (const v of vectors) for (let j = 0; j < d; j++) mean[j]! += v[j]!;
  for (let j = 0; j < d; j++) mean[j]! /= vectors.length;
  for (const v of vectors) {
    for (let j = 0; j < d; j++) {
      const dv = v[j]! - mean[j]!;
      m2[j]! += dv * dv;
    }
  }
  const floors = stdFloors();
  // Rounded so metadata.json stays readable; float32 precision is all the model sees anyway.
  const round = (x: number): number => Number(x.toPrecision(8));
  return {
    mean: Array.from(mean, round),
    std: Array.from(m2, (s, j) => round(Math.max(Math.sqrt(s / vectors.length), floors[j]!))),
  };
}

/** Normalized rows as one flat Float32Array, in the given row order. */
function normalizedMatrix(vectors: readonly Float32Array[], norm: { mean: number[]; std: number[] }, order?: ArrayLike<number>): Float32Array {
  const d = norm.mean.length;
  const n = order ? order.length : vectors.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const v = vectors[order ? order[i]! : i]!;
    for (let j = 0; j < d; j++) out[i * d + j] = (v[j]! - norm.mean[j]!) / norm.std[j]!;
  }
  return out;
}

function permutation(n: number, rand: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Layer widths from the input: e.g. [48, 12] -> 108 -> 48 -> 12 -> 48 -> 108. */
export function buildAutoencoder(inputWidth: number, hidden: readonly number[], seed: number, learningRate: number): tf.Sequential {
  const model = tf.sequential({ name: 'pitwall_ae' });
  const widths = [...hidden, ...hidden.slice(0, -1).reverse(), inputWidth];
  widths.forEach((units, i) => {
    const bottleneck = i === hidden.length - 1;
    const last = i === widths.length - 1;
    model.add(
      tf.layers.dense({
        units,
        // Linear bottleneck and output; relu elsewhere.
        activation: bottleneck || last ? 'linear' : 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + i }),
        biasInitializer: 'zeros',
        name: `dense_${i}`,
        ...(i === 0 ? { inputShape: [inputWidth] } : {}),
      }),
    );
  });
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'meanSquaredError' });
  return model;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export interface ModeEvaluation {
  mode: FailureMode;
  cars: number;
  /** Windows lying entirely after onset + ramp (full severity). */
  fullSeverityWindows: number;
  /** Fraction of those above the threshold. */
  detectedFraction: number;
  /** Cars with at least one full-severity window above the threshold. */
  carsDetected: number;
  medianScore: number;
  /** Windows during the ramp above threshold / all ramp windows. */
  rampDetectedFraction: number;
}

export interface Evaluation {
  seed: number;
  threshold: number;
  healthyCars: number;
  healthyWindows: number;
  healthyFalseAlerts: number;
  healthyScoreMax: number;
  /** Windows of failing cars ending before onset, which are healthy too. */
  preOnsetWindows: number;
  preOnsetFalseAlerts: number;
  modes: ModeEvaluation[];
}

export interface EvaluationOptions {
  seed: number;
  healthyCars: number;
  carsPerMode: number;
  warmupMs: number;
  rampMs: number;
  fullSeverityMs: number;
  modes?: readonly FailureMode[];
}

function scoresOf(model: ServableModel, meta: Pick<ModelMetadata, 'features' | 'normalization'>, windows: readonly WindowSample[], chunk = 4096): Float64Array {
  const out = new Float64Array(windows.length);
  for (let i = 0; i < windows.length; i += chunk) {
    const part = windows.slice(i, i + chunk);
    scoreBatch(
      model,
      meta,
      part.map((w) => w.vector),
    ).forEach((s, k) => {
      out[i + k] = s.score;
    });
  }
  return out;
}

/**
 * Scores a fresh fleet (its own seed and vehicle ids) where some cars get one failure each, after a
 * warm-up, and reports per mode how many full-severity windows cross the threshold.
 */
export function evaluateModel(model: ServableModel, meta: Pick<ModelMetadata, 'features' | 'normalization' | 'threshold'>, o: EvaluationOptions): Evaluation {
  const modes = o.modes ?? ALL_FAILURE_MODES;
  const cars = o.healthyCars + modes.length * o.carsPerMode;
  const idPrefix = 'eval';
  const fromTs = TRAINING_EPOCH_TS;
  const onsetTs = fromTs + o.warmupMs;
  const toTs = onsetTs + o.rampMs + o.fullSeverityMs;
  const failures: FailureSpec[] = [];
  const modeOf = new Map<string, FailureMode>();
  modes.forEach((mode, m) => {
    for (let k = 0; k < o.carsPerMode; k++) {
      // Failing cars come after the healthy ones.
      const vehicleId = `${idPrefix}-${String(o.healthyCars + m * o.carsPerMode + k + 1).padStart(4, '0')}`;
      const spec: FailureSpec = { vehicleId, mode, onsetTs, rampMs: o.rampMs };
      if (mode === 'faulty_sensor') spec.sensor = EVAL_FAULTY_SENSORS[k % EVAL_FAULTY_SENSORS.length]!;
      failures.push(spec);
      modeOf.set(vehicleId, mode);
    }
  });
  const windows = fleetWindows({ cars, seed: o.seed, idPrefix, fromTs, toTs, failures });
  const scores = scoresOf(model, meta, windows);
  const t = meta.threshold;
  let healthyWindows = 0;
  let healthyFalseAlerts = 0;
  let healthyScoreMax = 0;
  let preOnsetWindows = 0;
  let preOnsetFalseAlerts = 0;
  const per = new Map<FailureMode, { full: number[]; fullAbove: number; ramp: number; rampAbove: number; detectedCars: Set<string> }>();
  for (const mode of modes) per.set(mode, { full: [], fullAbove: 0, ramp: 0, rampAbove: 0, detectedCars: new Set() });
  windows.forEach((w, i) => {
    const s = scores[i]!;
    const mode = modeOf.get(w.vehicleId);
    const windowEnd = w.windowStart + WINDOW_SIZE_MS;
    if (mode === undefined) {
      healthyWindows++;
      if (s > t) healthyFalseAlerts++;
      healthyScoreMax = Math.max(healthyScoreMax, s);
      return;
    }
    const p = per.get(mode)!;
    if (windowEnd <= onsetTs) {
      preOnsetWindows++;
      if (s > t) preOnsetFalseAlerts++;
    } else if (w.windowStart >= onsetTs + o.rampMs) {
      p.full.push(s);
      if (s > t) {
        p.fullAbove++;
        p.detectedCars.add(w.vehicleId);
      }
    } else {
      p.ramp++;
      if (s > t) p.rampAbove++;
    }
  });
  return {
    seed: o.seed,
    threshold: t,
    healthyCars: o.healthyCars,
    healthyWindows,
    healthyFalseAlerts,
    healthyScoreMax,
    preOnsetWindows,
    preOnsetFalseAlerts,
    modes: modes.map((mode) => {
      const p = per.get(mode)!;
      const sorted = Float64Array.from(p.full).sort();
      return {
        mode,
        cars: o.carsPerMode,
        fullSeverityWindows: p.full.length,
        detectedFraction: p.full.length ? p.fullAbove / p.full.length : 0,
        carsDetected: p.detectedCars.size,
        medianScore: percentile(sorted, 50),
        rampDetectedFraction: p.ramp ? p.rampAbove / p.ramp : 0,
      };
    }),
  };
}

/** A fixed-width table of an evaluation, for people. */
export function formatEvaluation(e: Evaluation): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const rows = [
    `evaluation fleet: seed ${e.seed}, threshold ${e.threshold.toPrecision(5)}`,
    `mode                 cars  full-sev windows  above threshold  cars detected  median score  ramp windows above`,
    ...e.modes.map(
      (m) =>
        `${m.mode.padEnd(20)} ${String(m.cars).padStart(4)}  ${String(m.fullSeverityWindows).padStart(16)}  ${pct(m.detectedFraction).padStart(15)}  ${`${m.carsDetected}/${m.cars}`.padStart(13)}  ${m.medianScore.toPrecision(4).padStart(12)}  ${pct(m.rampDetectedFraction).padStart(18)}`,
    ),
    `healthy: ${e.healthyCars} cars, ${e.healthyWindows} windows, ${e.healthyFalseAlerts} false alerts (max score ${e.healthyScoreMax.toPrecision(4)}); ` +
      `failing cars before onset: ${e.preOnsetWindows} windows, ${e.preOnsetFalseAlerts} false alerts`,
  ];
  return rows.join('\n');
}

/**
 * The acceptance rule: no healthy window alerts (healthy cars, and failing cars before onset), and
 * every failing car alerts at full severity. Per-window fractions are reported, not required: with
 * an MSE over 108 features, some full-severity windows are indistinguishable from healthy ones by
 * construction (a sensor stuck at a plausible value for a whole window; engine vibration 4.5x its
 * idle level while the car stands still, which is normal for a moving car).
 */
export function evaluationPasses(e: Evaluation): boolean {
  return e.healthyFalseAlerts === 0 && e.preOnsetFalseAlerts === 0 && e.modes.every((m) => m.fullSeverityWindows > 0 && m.carsDetected === m.cars);
}

export function groupDescriptions(): Record<string, string> {
  const groups: Record<string, string> = {};
  for (const [group, { component, action }] of Object.entries(GROUP_ACTIONS) as [SensorGroup, { component: string; action: string }][]) {
    const sensors = SENSORS.filter((s) => s.group === group).map((s) => `${s.name} (${s.unit})`);
    groups[group] = `${component}: ${sensors.join(', ')}. ${action}`;
  }
  return groups;
}

export interface TrainOptions {
  /** Healthy training fleet (ignored for data when `csvReadings` is given). */
  cars: number;
  hours: number;
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  hidden: readonly number[];
  /** Held-out healthy fleet for validation loss and the threshold: other cars, other seed. */
  holdoutCars: number;
  holdoutHours: number;
  /** threshold = max held-out healthy score x thresholdFactor. */
  thresholdFactor: number;
  evaluation: Omit<EvaluationOptions, 'seed'> | false;
  outDir: string;
  name: string;
  version: string;
  /** Train on these readings instead of a generated fleet (the hold-out then comes from its cars too). */
  csv?: { readings: readonly Reading[]; source: string };
  /**
   * Train on windows computed elsewhere (e.g. from Kafka history, kafka-training.ts); whole cars are
   * held out as for CSV. `trainingData` extends the metadata's record of the data (source, range).
   */
  windows?: {
    all: readonly WindowSample[];
    source: string;
    trainingData?: Record<string, unknown>;
  };
  /**
   * The window to train on (CSV only): its size and the fleet's readings per second. Default the
   * simulator's, 10 s at 1 Hz. The evaluation fleet is simulated at 1 Hz with 10 s windows, so
   * another window skips it.
   */
  window?: { sizeMs: number; rateHz: number };
  /**
   * Share of a window's expected readings scoring requires, declared in the metadata's window
   * (default DEFAULT_MIN_COVERAGE, 0.8).
   */
  minCoverage?: number;
  /**
   * The fleet profile the training readings are in (recorded as metadata.fleetProfile): "pitwall"
   * for the simulator and Pitwall-unit CSVs; undefined for Kafka history unless the caller knows it.
   */
  fleetProfile?: string;
  createdAt?: string;
  onProgress?: (line: string) => void;
}

export interface TrainResult {
  dir: string;
  metadata: ModelMetadata;
  evaluation: Evaluation | undefined;
  model: tf.LayersModel;
}

/** Seeds of the three fleets, derived so that none share cars or random streams. */
export const seedsFor = (seed: number): { train: number; holdout: number; evaluation: number } => ({
  train: seed,
  holdout: seed + 1_000_003,
  evaluation: seed + 2_000_029,
});

/**
 * The drift reference of a simulator-trained model, rebuilt from its recorded training data
 * (trainingData: cars, seed, [fromTs, toTs)) without training: the simulator and the windowing are
 * deterministic, so these are the same windows it was trained on (10 s at 1 Hz). A model trained
 * on a CSV or Kafka history gets its reference when it is trained (trainModel writes it).
 */
export function simulatorDriftReference(meta: Pick<ModelMetadata, 'trainingData' | 'window'>): DriftReference {
  const t = meta.trainingData;
  if (t.source !== 'simulator') throw new RangeError(`training data source is ${JSON.stringify(t.source)}: only simulator-trained models can be rebuilt from their metadata`);
  if (meta.window.sizeMs !== WINDOW_SIZE_MS || meta.window.rateHz !== RATE_HZ) throw new RangeError('only 10 s windows at 1 Hz are simulated');
  const windows = fleetWindows({ cars: t.cars, seed: t.seed, idPrefix: 'train', fromTs: t.fromTs, toTs: t.toTs });
  if (windows.length !== t.windows) throw new RangeError(`rebuilt ${windows.length} training windows, the metadata records ${t.windows}`);
  return buildDriftReference(windows.map((w) => w.vector));
}

/** Trains, calibrates, evaluates and writes `<outDir>/<name>/<version>/`. Expects the cpu backend to be active. */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const progress = o.onProgress ?? (() => {});
  const seeds = seedsFor(o.seed);
  const fromTs = TRAINING_EPOCH_TS;
  let train: WindowSample[];
  let holdout: WindowSample[];
  let trainingData: ModelMetadata['trainingData'];
  let holdoutDescription: string;
  const started = Date.now();
  const trained = o.window ?? { sizeMs: WINDOW_SIZE_MS, rateHz: RATE_HZ };
  if (o.window && !o.csv) throw new RangeError('another window than 10 s at 1 Hz is only supported for CSV training');
  const declared = declaredWindow(trained.sizeMs, trained.rateHz, o.minCoverage ?? DEFAULT_MIN_COVERAGE);
  const simulatorWindow = trained.sizeMs === WINDOW_SIZE_MS && trained.rateHz === RATE_HZ;
  if (o.csv || o.windows) {
    // Whole cars are held out (every fifth), so the threshold is calibrated on cars the model never saw.
    // CSV: the windows scoring would score (at least the declared minReadings).
    const all = o.windows ? o.windows.all : csvWindows(o.csv!.readings, windowDef(trained.sizeMs), o.window ? declared.minReadings : undefined);
    const kind = o.windows ? 'Kafka' : 'CSV';
    const ids = [...new Set(all.map((w) => w.vehicleId))].sort();
    if (ids.length < 2) throw new RangeError(`${kind} training needs at least 2 cars (some are held out for calibration)`);
    const held = new Set(ids.filter((_, i) => i % 5 === 4 || (ids.length < 5 && i === ids.length - 1)));
    train = all.filter((w) => !held.has(w.vehicleId));
    holdout = all.filter((w) => held.has(w.vehicleId));
    let fromTs = Number.POSITIVE_INFINITY;
    let toTs = Number.NEGATIVE_INFINITY;
    for (const w of all) {
      fromTs = Math.min(fromTs, w.windowStart);
      toTs = Math.max(toTs, w.windowStart + trained.sizeMs);
    }
    trainingData = {
      source: o.windows ? o.windows.source : `csv:${path.basename(o.csv!.source)}`,
      cars: ids.length - held.size,
      seed: o.seed,
      fromTs,
      toTs,
      windows: train.length,
      ...(o.windows?.trainingData ?? {}),
    };
    holdoutDescription = `${held.size} held-out ${kind} cars, ${holdout.length} windows`;
  } else {
    const toTs = fromTs + Math.round(o.hours * 3_600_000);
    train = fleetWindows({ cars: o.cars, seed: seeds.train, idPrefix: 'train', fromTs, toTs });
    holdout = fleetWindows({ cars: o.holdoutCars, seed: seeds.holdout, idPrefix: 'holdout', fromTs, toTs: fromTs + Math.round(o.holdoutHours * 3_600_000) });
    trainingData = { source: 'simulator', cars: o.cars, seed: seeds.train, fromTs, toTs, windows: train.length };
    holdoutDescription = `${o.holdoutCars} simulated cars, seed ${seeds.holdout}, ${o.holdoutHours} h, ${holdout.length} windows`;
  }
  if (train.length === 0 || holdout.length === 0) throw new RangeError('no complete windows to train or calibrate on');
  progress(`data: ${train.length} training windows, hold-out ${holdoutDescription} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  const norm = fitNormalization(train.map((w) => w.vector));
  const d = FEATURE_NAMES.length;
  const model = buildAutoencoder(d, o.hidden, o.seed, o.learningRate);
  const rand = mulberry32(o.seed ^ 0x5eed);
  const holdoutX = tf.tensor2d(
    normalizedMatrix(
      holdout.map((w) => w.vector),
      norm,
    ),
    [holdout.length, d],
  );
  let finalLoss = Number.NaN;
  let valLoss = Number.NaN;
  try {
    const vectors = train.map((w) => w.vector);
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = Date.now();
      const x = tf.tensor2d(normalizedMatrix(vectors, norm, permutation(vectors.length, rand)), [vectors.length, d]);
      try {
        const h = await model.fit(x, x, { epochs: 1, batchSize: o.batchSize, shuffle: false, verbose: 0 });
        finalLoss = Number(h.history.loss?.[0]);
      } finally {
        x.dispose();
      }
      valLoss = tf.tidy(() => (model.evaluate(holdoutX, holdoutX, { batchSize: 4096 }) as tf.Scalar).dataSync()[0]!);
      progress(`epoch ${epoch}/${o.epochs}: loss ${finalLoss.toFixed(5)}, hold-out loss ${valLoss.toFixed(5)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    holdoutX.dispose();
  }

  const features = [...FEATURE_NAMES];
  // Kafka history is in Pitwall's units whatever fleet sent it (ingest converted it); which fleet that was is only known to the caller.
  const fleetProfile = o.fleetProfile ?? (o.windows ? undefined : 'pitwall');
  const holdoutScores = scoresOf(model, { features, normalization: norm }, holdout).sort();
  const p50 = percentile(holdoutScores, 50);
  const p99 = percentile(holdoutScores, 99);
  const max = holdoutScores[holdoutScores.length - 1]!;
  const threshold = Number((max * o.thresholdFactor).toPrecision(6));
  progress(`hold-out healthy scores: p50 ${p50.toPrecision(4)}, p99 ${p99.toPrecision(4)}, max ${max.toPrecision(4)} -> threshold ${threshold}`);

  if (o.evaluation && !simulatorWindow) progress(`evaluation skipped: the simulated failure fleet has 10 s windows at 1 Hz, this model ${trained.sizeMs / 1000} s at ${trained.rateHz} Hz`);
  const evaluation = o.evaluation && simulatorWindow ? evaluateModel(model, { features, normalization: norm, threshold }, { ...o.evaluation, seed: seeds.evaluation }) : undefined;
  if (evaluation) progress(formatEvaluation(evaluation));

  const metadata: ModelMetadata = {
    name: o.name,
    version: o.version,
    description:
      `Dense autoencoder ${[d, ...o.hidden, ...o.hidden.slice(0, -1).reverse(), d].join('-')} over z-scored ${trained.sizeMs / 1000} s window features; ` +
      'score = mean squared error of the normalized reconstruction; a window alerts when score > threshold.',
    featureSpec: FEATURE_SPEC_ID,
    features,
    normalization: { ...norm, stdFloor: 'per feature max(training std, 1e-4 x the sensor plausible span)' },
    threshold,
    thresholdMethod: `max held-out healthy score x ${o.thresholdFactor} (held-out: ${holdoutDescription}; ` + `p50 ${p50.toPrecision(4)}, p99 ${p99.toPrecision(4)}, max ${max.toPrecision(4)})`,
    window: declared,
    ...(fleetProfile !== undefined ? { fleetProfile } : {}),
    drift: buildDriftReference(train.map((w) => w.vector)),
    trainingData,
    trainingMetrics: {
      finalLoss,
      valLoss,
      healthyScoreP50: p50,
      healthyScoreP99: p99,
      healthyScoreMax: max,
      epochs: o.epochs,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      seconds: Math.round((Date.now() - started) / 1000),
    },
    ...(evaluation ? { evaluation } : {}),
    createdAt: o.createdAt ?? new Date().toISOString(),
    groups: groupDescriptions(),
  };
  const dir = path.join(o.outDir, o.name, o.version);
  await saveModelDir(dir, model, metadata);
  progress(`wrote ${dir}`);
  return { dir, metadata, evaluation, model };
}
