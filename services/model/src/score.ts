/**
 * Scoring math, pure apart from running the model: anomaly score of a window = mean squared error
 * between its z-scored feature vector and the autoencoder's reconstruction of it. Per sensor, the
 * share of that error is the sensor's summed squared error over its aggregates divided by the
 * total, which is what an alert reports as contributors.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { GROUP_ACTIONS, SENSOR_BY_NAME, SENSOR_NAMES, type AlertRecord, type Contributor, type ScoreRecord } from '@pitwall/common';
import type { ModelMetadata } from './model-dir.js';
import { reconstruct, type ServableModel } from './servable.js';

export interface Scored {
  score: number;
  /** Per sensor, in SENSOR_NAMES order: share of the squared error, 0..1; the shares sum to 1 (or are all 0). */
  shares: ArrayLike<number>;
}

/** A scored window's shares by sensor name. */
export function perSensorShare(scored: Pick<Scored, 'shares'>): Record<string, number> {
  return Object.fromEntries(SENSOR_NAMES.map((s, si) => [s, scored.shares[si] ?? 0]));
}

/**
 * Input index -> sensor index, from the names in the metadata: `<sensor>_<aggregate>` window
 * features, or the sensor names of a reading input (model-input.ts).
 */
function sensorIndexOf(features: readonly string[]): Int32Array {
  const out = new Int32Array(features.length);
  features.forEach((f, i) => {
    let best = SENSOR_NAMES.indexOf(f);
    // Longest matching sensor prefix, so a name that prefixes another cannot steal its features.
    if (best < 0) {
      SENSOR_NAMES.forEach((s, si) => {
        if (f.startsWith(`${s}_`) && (best < 0 || s.length > SENSOR_NAMES[best]!.length)) best = si;
      });
    }
    if (best < 0) throw new Error(`feature ${f} does not belong to any sensor`);
    out[i] = best;
  });
  return out;
}

const sensorIndexCache = new WeakMap<readonly string[], Int32Array>();

/**
 * Scores vectors (raw inputs in metadata.features order: window features, or a reading model's
 * sensor values) with one predict call. The scaling step is (x - mean) / std with the metadata's
 * normalization, which validateMetadata derives from a declared input's z-score or min-max
 * scaling (model-input.ts). Creates no
 * tensors that outlive the call.
 */
export function scoreBatch(model: ServableModel, metadata: Pick<ModelMetadata, 'features' | 'normalization'>, vectors: readonly Float32Array[]): Scored[] {
  const n = vectors.length;
  const d = metadata.features.length;
  if (n === 0) return [];
  let sensorOf = sensorIndexCache.get(metadata.features);
  if (!sensorOf) {
    sensorOf = sensorIndexOf(metadata.features);
    sensorIndexCache.set(metadata.features, sensorOf);
  }
  // z-scores computed here rather than as two tensor ops: in float32, rounding after the
  // subtraction and after the division, exactly as the tensor ops did (their operands are the
  // float32 mean and std), so the model sees the same bits.
  const mean = Float32Array.from(metadata.normalization.mean);
  const std = Float32Array.from(metadata.normalization.std);
  const z = new Float32Array(n * d);
  vectors.forEach((v, i) => {
    if (v.length !== d) throw new RangeError(`vector ${i} has ${v.length} features, the model expects ${d}`);
    const base = i * d;
    for (let j = 0; j < d; j++) z[base + j] = Math.fround(v[j]! - mean[j]!) / std[j]!;
  });
  // The squared errors are read outside tf.tidy: tidy walks whatever its callback returns looking
  // for tensors, and for a typed array that is every element (most of the chunk's time at n=1024).
  const sqTensor = tf.tidy(() => {
    const zt = tf.tensor2d(z, [n, d]);
    return reconstruct(model, zt).squaredDifference(zt);
  });
  let sq: Float32Array;
  try {
    // A copy: a backend may hand out its own buffer, which belongs to the disposed tensor.
    sq = (sqTensor.dataSync() as Float32Array).slice();
  } finally {
    sqTensor.dispose();
  }
  // One buffer of shares for the batch, a view per window (a record of 18 names per window was a
  // tenth of a scoring chunk's allocations).
  const sensors = SENSOR_NAMES.length;
  const shares = new Float64Array(n * sensors);
  const out: Scored[] = new Array<Scored>(n);
  for (let i = 0; i < n; i++) {
    const base = i * sensors;
    let total = 0;
    for (let j = 0; j < d; j++) {
      const e = sq[i * d + j]!;
      total += e;
      shares[base + sensorOf[j]!]! += e;
    }
    for (let si = 0; si < sensors; si++) shares[base + si] = total > 0 ? shares[base + si]! / total : 0;
    out[i] = { score: total / d, shares: shares.subarray(base, base + sensors) };
  }
  return out;
}

export type { AlertRecord, Contributor, ScoreRecord } from '@pitwall/common';

/** The identifying fields of a `vehicle.features` record. */
export interface WindowKey {
  vehicle_id: string;
  window_start: number;
  window_end: number;
}

/** Same window scored by the same model version -> same id, so a redelivered window can be deduplicated. */
export function alertId(key: WindowKey, modelName: string, modelVersion: string): string {
  return createHash('sha256').update(`${key.vehicle_id}|${key.window_start}|${key.window_end}|${modelName}|${modelVersion}`).digest('hex').slice(0, 32);
}

/** The largest shares first (ties in sensor order), at most `limit`, zero shares left out. Shares in SENSOR_NAMES order (Scored.shares). */
export function topContributors(shareOf: ArrayLike<number>, limit = 3): Contributor[] {
  // A selection over 18 sensors per scored window, without the arrays a map/filter/sort allocates
  // (it was 8 % of a scoring chunk). Ties keep sensor order: a later sensor passes only a larger share.
  const top: number[] = [];
  const shares: number[] = [];
  for (let si = 0; si < SENSOR_NAMES.length; si++) {
    const share = shareOf[si] ?? 0;
    if (!(share > 0)) continue;
    let k = top.length;
    while (k > 0 && share > shares[k - 1]!) k--;
    if (k >= limit) continue;
    top.splice(k, 0, si);
    shares.splice(k, 0, share);
    if (top.length > limit) {
      top.pop();
      shares.pop();
    }
  }
  return top.map((si, k) => {
    const sensor = SENSOR_NAMES[si]!;
    return { sensor, share: shares[k]!, ...GROUP_ACTIONS[SENSOR_BY_NAME.get(sensor)!.group] };
  });
}

export function buildAlert(features: WindowKey, scored: Scored, model: Pick<ModelMetadata, 'name' | 'version' | 'threshold'>, now: number): AlertRecord {
  return alertOf({ ...buildScore(features, scored, model, now), alert_id: alertId(features, model.name, model.version) }, now);
}

/** The alert of an anomalous window's score record: its id, window, score, model and contributors. */
export function alertOf(score: ScoreRecord, now: number): AlertRecord {
  return {
    alert_id: score.alert_id!,
    vehicle_id: score.vehicle_id,
    window_start: score.window_start,
    window_end: score.window_end,
    score: score.score,
    threshold: score.threshold,
    model_name: score.model_name,
    model_version: score.model_version,
    contributors: score.contributors,
    created_at: now,
  };
}

/** score > threshold: the one rule for "this window alerts" (a NaN score never does). */
export function isAnomalous(scored: Pick<Scored, 'score'>, model: Pick<ModelMetadata, 'threshold'>): boolean {
  return scored.score > model.threshold;
}

/**
 * The `vehicle.scores` record of a scored window, normal or anomalous. When anomalous, alert_id is
 * the id buildAlert gives the same window and model, so a score and its alert can be joined.
 */
export function buildScore(features: WindowKey, scored: Scored, model: Pick<ModelMetadata, 'name' | 'version' | 'threshold'>, now: number): ScoreRecord {
  const anomalous = isAnomalous(scored, model);
  return {
    vehicle_id: features.vehicle_id,
    window_start: features.window_start,
    window_end: features.window_end,
    score: scored.score,
    threshold: model.threshold,
    anomalous,
    alert_id: anomalous ? alertId(features, model.name, model.version) : null,
    model_name: model.name,
    model_version: model.version,
    contributors: topContributors(scored.shares),
    scored_at: now,
  };
}

/** Share of a window's expected readings below which it is not scored (SCORING_MIN_COVERAGE's default). */
export const DEFAULT_MIN_COVERAGE = 0.8;

/** A model's window with everything scoring needs resolved (what the metadata declares, else the defaults). */
export interface ModelWindow {
  sizeMs: number;
  rateHz: number;
  /** Readings a full window holds: size x rate. */
  expectedReadings: number;
  /** The coverage minReadings was derived from (declared, or the scorer's default). */
  minCoverage: number;
  /** Fewest readings a window needs to be scored. */
  minReadings: number;
  /** Where minReadings comes from. */
  source: 'minReadings' | 'minCoverage' | 'default';
}

/**
 * The model's window as scoring applies it. The metadata's own minReadings wins; else its
 * minCoverage; else `defaultCoverage` (SCORING_MIN_COVERAGE), so metadata written before the window
 * declared them is scored as it always was: ceil(size x rate x coverage), at least 1.
 */
export function modelWindow(meta: Pick<ModelMetadata, 'window'>, defaultCoverage = DEFAULT_MIN_COVERAGE): ModelWindow {
  const { sizeMs, rateHz } = meta.window;
  // Rounded to 12 digits: 120 s x 0.1 Hz is 12.000000000000002 in binary, and ceil() would make it 13.
  const exact = (x: number): number => Number(x.toPrecision(12));
  const expectedReadings = exact((sizeMs / 1000) * rateHz);
  const minCoverage = meta.window.minCoverage ?? defaultCoverage;
  const source = meta.window.minReadings !== undefined ? 'minReadings' : meta.window.minCoverage !== undefined ? 'minCoverage' : 'default';
  const minReadings = meta.window.minReadings ?? Math.max(1, Math.ceil(exact(expectedReadings * minCoverage)));
  return { sizeMs, rateHz, expectedReadings, minCoverage, minReadings, source };
}

/** Fewest events a window needs to be scored (modelWindow(...).minReadings). Training uses full windows only. */
export function minEventsFor(meta: Pick<ModelMetadata, 'window'>, coverage: number): number {
  return modelWindow(meta, coverage).minReadings;
}
