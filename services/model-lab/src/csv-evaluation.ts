/**
 * Evaluation of a model on a fleet's own recorded data, where no ground truth is known
 * (`npm run evaluate -- --csv FILE --profile NAME`; bin/evaluation.ts).
 *
 * The CSV's readings are converted with the fleet profile (readingsInProfile, ingest's conversion),
 * cut into the model's windows (csvWindows: the windowing service's core), scored with the serving
 * code (scoreVectors) and run per car, in window order, through the stuck-sensor detector:
 * decideWindow, the rule scoring applies. Per car the report says what the model found (alerting
 * windows, the worst window and its contributors) next to what is obvious in the data without any
 * model: readings outside the profile's plausible ranges (the `out_of_range` ingest flags), per
 * sensor with the worst value. `agreement` compares the two:
 *   - cars alerted / with implausible readings, and the four combinations;
 *   - alert windows whose first contributor is a sensor that car reads implausibly somewhere;
 *   - Spearman rank correlation, over cars, between the car's highest window score and how far its
 *     worst reading lies outside the plausible range (in spans of that range; 0 when none).
 *
 * Deterministic: no clock; same file, profile and model give the same report.
 */
import { featureFields, featureVector, SENSOR_BY_NAME, windowDef, type Contributor, type FleetProfile } from '@pitwall/common';
import type { Reading } from '@pitwall/simulator';
import { createStuckSensorDetector, decideWindow, modelWindow, stuckWindowOf, type ModelMetadata, type ServableModel } from '@pitwall/model';
import { scoreVectors } from './replay.js';
import { csvWindows, readingsInProfile } from './training.js';

export const CSV_EVALUATION_SCHEMA = 'pitwall.csv-evaluation.v1';

/** A sensor a car read outside the profile's plausible range, in Pitwall's units. */
export interface Implausible {
  sensor: string;
  unit: string;
  readings: number;
  /** The reading furthest outside the range. */
  worst: number;
  plausible: [number, number];
  /** How far `worst` lies outside the range, in spans of the range. */
  excess: number;
}

export interface CsvCarReport {
  vehicleId: string;
  readings: number;
  /** Windows with at least the model's minReadings: scored. */
  windows: number;
  /** Windows with fewer readings: not scored, as scoring skips them. */
  partialWindows: number;
  alertWindows: number;
  /** Alert windows the stuck-sensor detector raised. */
  stuckWindows: number;
  firstAlertTs: number | null;
  /** The highest-scoring window and its contributors (null when no window was scored). */
  worst: { windowStart: number; windowEnd: number; score: number; anomalous: boolean; contributors: Contributor[] } | null;
  implausible: Implausible[];
}

export interface CsvEvaluationReport {
  schema: typeof CSV_EVALUATION_SCHEMA;
  source: string;
  profile: string;
  model: { name: string; version: string; threshold: number; fleetProfile: string | null };
  window: { sizeMs: number; minReadings: number };
  readings: number;
  windows: number;
  partialWindows: number;
  alertWindows: number;
  /** Highest window score first. */
  cars: CsvCarReport[];
  agreement: {
    cars: number;
    alerted: number;
    implausible: number;
    both: number;
    alertedOnly: number;
    implausibleOnly: number;
    neither: number;
    /** Alert windows whose first contributor is a sensor the same car reads implausibly. */
    alertsOnImplausibleSensor: number;
    /** Spearman's rho between per-car highest score and worst excess; null with fewer than 2 cars. */
    rankCorrelation: number | null;
  };
}

/** Ranks with ties averaged (1-based). */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) out[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson's r of the ranks); null when either side is constant or n < 2. */
export function spearman(a: readonly number[], b: readonly number[]): number | null {
  if (a.length !== b.length) throw new RangeError('spearman: series of different lengths');
  if (a.length < 2) return null;
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (ra.length + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i]! - mean) * (rb[i]! - mean);
    da += (ra[i]! - mean) ** 2;
    db += (rb[i]! - mean) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : null;
}

/** How far `v` lies outside [lo, hi], in spans of the range; 0 inside. */
export const excessOf = (v: number, [lo, hi]: readonly [number, number]): number => Math.max(0, lo - v, v - hi) / (hi - lo);

export function evaluateCsv(
  model: ServableModel,
  meta: Pick<ModelMetadata, 'name' | 'version' | 'threshold' | 'features' | 'normalization' | 'window' | 'fleetProfile' | 'input'>,
  raw: readonly Reading[],
  profile: FleetProfile,
  source: string,
): CsvEvaluationReport {
  if (meta.input?.kind === 'reading') throw new RangeError(`${meta.name} v${meta.version} declares a reading input; evaluate --csv scores windows`);
  const plausible = new Map(profile.sensors.map((m) => [m.sensor, m.plausible]));
  const implausible = new Map<string, Map<string, Implausible>>();
  const readingsOf = new Map<string, number>();
  const readings = readingsInProfile(raw, profile, (r, sensors) => {
    let car = implausible.get(r.vehicleId);
    if (!car) implausible.set(r.vehicleId, (car = new Map<string, Implausible>()));
    for (const sensor of sensors) {
      const v = r.values[sensor]!;
      const range = plausible.get(sensor)!;
      const e = excessOf(v, range);
      const seen = car.get(sensor);
      if (!seen) car.set(sensor, { sensor, unit: SENSOR_BY_NAME.get(sensor)!.unit, readings: 1, worst: v, plausible: [range[0], range[1]], excess: e });
      else {
        seen.readings++;
        if (e > seen.excess) Object.assign(seen, { worst: v, excess: e });
      }
    }
  });
  for (const r of readings) readingsOf.set(r.vehicleId, (readingsOf.get(r.vehicleId) ?? 0) + 1);

  const { sizeMs, minReadings } = modelWindow(meta);
  // Every window, partial ones included, then only those scoring would score.
  const all = csvWindows(readings, windowDef(sizeMs), 1).sort((a, b) => (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : a.windowStart - b.windowStart));
  const full = all.filter((w) => w.events >= minReadings);
  const scored = scoreVectors(
    model,
    meta,
    // A model of a subset of the features (a declared window input) sees those, in its order.
    full.map((w) => (meta.input === undefined ? w.vector : featureVector(featureFields(w.vector), meta.features))),
  );
  const cars = new Map<string, CsvCarReport>();
  const carOf = (id: string): CsvCarReport => {
    let c = cars.get(id);
    if (!c) {
      const found = [...(implausible.get(id)?.values() ?? [])].sort((a, b) => b.excess - a.excess);
      c = { vehicleId: id, readings: readingsOf.get(id) ?? 0, windows: 0, partialWindows: 0, alertWindows: 0, stuckWindows: 0, firstAlertTs: null, worst: null, implausible: found };
      cars.set(id, c);
    }
    return c;
  };
  for (const id of readingsOf.keys()) carOf(id);
  for (const w of all) if (w.events < minReadings) carOf(w.vehicleId).partialWindows++;
  const detector = createStuckSensorDetector();
  let alertsOnImplausibleSensor = 0;
  full.forEach((w, i) => {
    const key = { vehicle_id: w.vehicleId, window_start: w.windowStart, window_end: w.windowStart + sizeMs };
    const stuck = detector.observe(stuckWindowOf(w.vehicleId, key.window_start, key.window_end, w.events, w.vector));
    const { score } = decideWindow(key, scored[i]!, meta, stuck, key.window_end);
    const c = carOf(w.vehicleId);
    c.windows++;
    if (c.worst === null || score.score > c.worst.score) {
      c.worst = { windowStart: key.window_start, windowEnd: key.window_end, score: score.score, anomalous: score.anomalous, contributors: score.contributors };
    }
    if (!score.anomalous) return;
    c.alertWindows++;
    if (stuck.length) c.stuckWindows++;
    if (c.firstAlertTs === null) c.firstAlertTs = key.window_end;
    const top = score.contributors[0]?.sensor;
    if (top !== undefined && c.implausible.some((x) => x.sensor === top)) alertsOnImplausibleSensor++;
  });

  const list = [...cars.values()].sort((a, b) => (b.worst?.score ?? -1) - (a.worst?.score ?? -1) || (a.vehicleId < b.vehicleId ? -1 : 1));
  const alerted = (c: CsvCarReport): boolean => c.alertWindows > 0;
  const odd = (c: CsvCarReport): boolean => c.implausible.length > 0;
  const withScore = list.filter((c) => c.worst !== null);
  return {
    schema: CSV_EVALUATION_SCHEMA,
    source,
    profile: profile.name,
    model: { name: meta.name, version: meta.version, threshold: meta.threshold, fleetProfile: meta.fleetProfile ?? null },
    window: { sizeMs, minReadings },
    readings: readings.length,
    windows: full.length,
    partialWindows: all.length - full.length,
    alertWindows: list.reduce((a, c) => a + c.alertWindows, 0),
    cars: list,
    agreement: {
      cars: list.length,
      alerted: list.filter(alerted).length,
      implausible: list.filter(odd).length,
      both: list.filter((c) => alerted(c) && odd(c)).length,
      alertedOnly: list.filter((c) => alerted(c) && !odd(c)).length,
      implausibleOnly: list.filter((c) => !alerted(c) && odd(c)).length,
      neither: list.filter((c) => !alerted(c) && !odd(c)).length,
      alertsOnImplausibleSensor,
      rankCorrelation: spearman(
        withScore.map((c) => c.worst!.score),
        withScore.map((c) => c.implausible[0]?.excess ?? 0),
      ),
    },
  };
}

const num = (x: number): string => (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toPrecision(3));

/** The readable report: a summary and the `top` highest-scoring cars (all with top = Infinity). */
export function formatCsvReport(r: CsvEvaluationReport, top = 20): string {
  const a = r.agreement;
  const head = ['car', 'readings', 'windows', 'alerts', 'max score', 'top contributors (worst window)', 'implausible readings (worst value)'];
  const rows = r.cars.slice(0, top).map((c) => [
    c.vehicleId,
    String(c.readings),
    `${c.windows}${c.partialWindows ? ` +${c.partialWindows} partial` : ''}`,
    `${c.alertWindows}${c.stuckWindows ? ` (${c.stuckWindows} stuck)` : ''}`,
    c.worst ? num(c.worst.score) : '-',
    c.worst
      ? c.worst.contributors
          .slice(0, 3)
          .map((x) => `${x.sensor} ${(100 * x.share).toFixed(0)}%`)
          .join(', ')
      : '-',
    c.implausible.length
      ? c.implausible
          .slice(0, 2)
          .map((x) => `${x.sensor} ${x.readings}x (${num(x.worst)} ${x.unit})`)
          .join(', ') + (c.implausible.length > 2 ? `, +${c.implausible.length - 2} more` : '')
      : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]): string =>
    cols
      .map((c, i) => (i >= 1 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rho = a.rankCorrelation === null ? '-' : a.rankCorrelation.toFixed(2);
  return [
    `${r.source} in profile ${r.profile}, scored with ${r.model.name} v${r.model.version} (threshold ${r.model.threshold}; trained with profile ${r.model.fleetProfile ?? 'unknown'})`,
    `${r.readings} readings of ${a.cars} cars; ${r.window.sizeMs / 1000} s windows, >= ${r.window.minReadings} readings to score: ${r.windows} scored, ${r.partialWindows} partial; ${r.alertWindows} alert windows`,
    `cars alerted ${a.alerted}, with implausible readings ${a.implausible}: both ${a.both}, alerted only ${a.alertedOnly}, implausible only ${a.implausibleOnly}, neither ${a.neither}`,
    `alert windows led by a sensor that car reads implausibly: ${a.alertsOnImplausibleSensor} of ${r.alertWindows}; rank correlation of max score with worst implausible excess: ${rho}`,
    line(head),
    ...rows.map(line),
    ...(r.cars.length > top ? [`... ${r.cars.length - top} more cars in the JSON report`] : []),
  ].join('\n');
}
