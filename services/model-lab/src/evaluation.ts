/**
 * Offline evaluation of a model version against ground truth (bin/evaluation.ts is the command line).
 *
 * A seeded simulator fleet is generated in-process: `healthyCars` cars that never fail, and for
 * every failure mode `carsPerMode` cars that fail at a known onset (staggered over `onsetSpreadMs`
 * after `onsetMs`, ramping to full severity over `rampMs`). Readings are cut into windows with the
 * same window definition and computeFeatures as the windowing service (training.ts fleetWindows),
 * scored with scoreBatch (the serving code path) and fed per car, in window order, to the
 * stuck-sensor detector (stuck-sensor.ts in @pitwall/model, which scoring runs too). A window alerts
 * when score > threshold (isAnomalous) or the detector calls one of its sensors stuck: the serving
 * rule. The report also holds the same metrics for the model alone (`modelOnly`).
 *
 * What counts (per window; a window [start, end) of car c):
 *   - true alert: c fails and the window alerts and end > onset(c) (it holds readings from after onset)
 *   - false alert: the window alerts and c never fails, or end <= onset(c)
 *   - healthy time: windows of healthy cars, and windows of failing cars with end <= onset
 * Per failure mode M (the fleet of the healthy cars plus the cars failing with M):
 *   - precision = true alerts of M cars / (true alerts of M cars + false alerts of M cars before
 *     onset + false alerts of healthy cars). Healthy cars' false alerts count against every mode:
 *     an operator cannot tell which failure a false alert pretends to be.
 *   - recall = M cars with at least one true alert / M cars (per vehicle)
 *   - full-severity window recall = alerting windows with start >= onset + ramp / such windows
 *   - false alerts per vehicle-hour = (false alerts of M cars + of healthy cars) / healthy hours of
 *     the same cars (a window counts its length)
 *   - lead time = end of the first true-alert window - onset, per detected car; median and p90
 *     (nearest rank) over detected cars. Severity at first alert = how far the ramp was (0..1).
 * Overall: the same over all modes at once (all failing cars, every false alert once).
 *
 * Deterministic: no clock, seeded fleet, fixed scoring chunks. Same options and model, same result.
 */
import { featureFields, featureVector, windowDef } from '@pitwall/common';
import { FAILURE_MODES, type FailureMode, type FailureSpec } from '@pitwall/simulator';
import { createStuckSensorDetector, isAnomalous, stuckWindowOf, type ModelMetadata, type ServableModel } from '@pitwall/model';
import { scoreVectors } from './replay.js';
import { EVAL_FAULTY_SENSORS, fleetWindows, percentile, TRAINING_EPOCH_TS } from './training.js';

export const EVALUATION_SCHEMA = 'pitwall.evaluation.v1';

export interface FleetEvaluationOptions {
  seed: number;
  healthyCars: number;
  carsPerMode: number;
  modes: readonly FailureMode[];
  /** Event time simulated per car. */
  durationMs: number;
  /** First onset, after the fleet starts. */
  onsetMs: number;
  /** Onsets of one mode's cars are spread evenly over [onsetMs, onsetMs + onsetSpreadMs). */
  onsetSpreadMs: number;
  rampMs: number;
  windowSizeMs: number;
  /** Overrides the model's threshold when set. */
  threshold?: number | undefined;
}

export const DEFAULT_FLEET_EVALUATION: FleetEvaluationOptions = Object.freeze({
  seed: 42,
  healthyCars: 100,
  carsPerMode: 10,
  modes: FAILURE_MODES,
  durationMs: 90 * 60_000,
  onsetMs: 30 * 60_000,
  onsetSpreadMs: 20 * 60_000,
  rampMs: 10 * 60_000,
  windowSizeMs: 10_000,
});

/** One injected failure: which car, which mode, when. */
export interface GroundTruth {
  vehicleId: string;
  mode: FailureMode;
  onsetTs: number;
  rampMs: number;
  sensor?: string;
}

/** A scored window; only what the metrics need. */
export interface ScoredWindow {
  vehicleId: string;
  windowStart: number;
  windowEnd: number;
  score: number;
  /** The stuck-sensor detector called a sensor of this window stuck. */
  stuck?: boolean;
}

export interface CarResult {
  vehicleId: string;
  onsetTs: number;
  sensor?: string;
  postOnsetWindows: number;
  trueAlerts: number;
  falseAlertsBeforeOnset: number;
  /** window_end of the first true alert, or null when never detected. */
  firstAlertTs: number | null;
  leadTimeS: number | null;
  severityAtFirstAlert: number | null;
}

export interface Metrics {
  cars: number;
  carsDetected: number;
  recall: number;
  trueAlerts: number;
  falseAlerts: number;
  /** null when nothing alerted at all (no alert, nothing to be precise about). */
  precision: number | null;
  fullSeverityWindows: number;
  fullSeverityWindowRecall: number | null;
  healthyHours: number;
  falseAlertsPerVehicleHour: number;
  leadTimeS: { median: number | null; p90: number | null; min: number | null; max: number | null };
  medianSeverityAtFirstAlert: number | null;
}

export interface ModeResult extends Metrics {
  mode: FailureMode;
  perCar: CarResult[];
}

export interface ExampleSeries {
  mode: FailureMode;
  vehicleId: string;
  onsetTs: number;
  fullSeverityTs: number;
  /** [window_end, score] per window, in time order. */
  points: Array<[number, number]>;
}

export interface EvaluationReport {
  schema: typeof EVALUATION_SCHEMA;
  model: { name: string; version: string; threshold: number; thresholdSource: 'model' | 'override'; modelThreshold: number };
  fleet: FleetEvaluationOptions & { startTs: number; rateHz: number; failingCars: number };
  definitions: Record<string, string>;
  healthy: { cars: number; windows: number; hours: number; falseAlerts: number; maxScore: number };
  modes: ModeResult[];
  overall: Metrics;
  /** The same metrics for the model alone, without the stuck-sensor detector. */
  modelOnly: { healthy: EvaluationReport['healthy']; modes: ModeResult[]; overall: Metrics };
  /** Windows the stuck-sensor detector called stuck: of healthy cars, of failing cars, of each mode's cars. */
  stuckSensor: { healthyWindows: number; failingWindows: number; byMode: Record<string, number> };
  groundTruth: GroundTruth[];
  examples: ExampleSeries[];
  windows: number;
}

export const DEFINITIONS: Readonly<Record<string, string>> = Object.freeze({
  alert: 'a window alerts when its score > threshold or the stuck-sensor detector calls one of its sensors stuck (the serving rule)',
  trueAlert: 'an alerting window of a failing car whose end is after the onset',
  falseAlert: 'an alerting window of a healthy car, or of a failing car ending at or before its onset',
  precision: "true alerts of the mode's cars / (those + false alerts of the mode's cars + false alerts of healthy cars), in windows",
  recall: 'cars of the mode with at least one true alert / cars of the mode',
  fullSeverityWindowRecall: 'alerting windows starting at or after onset + ramp / all such windows',
  falseAlertsPerVehicleHour: 'false alerts / healthy hours (healthy cars, and failing cars before onset), of the cars in the row',
  leadTime: 'end of the first true-alert window - onset, per detected car (seconds); median and p90 by nearest rank',
  severityAtFirstAlert: 'fraction of the ramp to full severity reached at the first true alert (median over detected cars)',
});

/** Failing cars come after the healthy ones; onsets of one mode's cars are evenly staggered. */
export function groundTruthFor(o: FleetEvaluationOptions, startTs: number, idPrefix = 'eval'): GroundTruth[] {
  const out: GroundTruth[] = [];
  o.modes.forEach((mode, m) => {
    for (let k = 0; k < o.carsPerMode; k++) {
      const vehicleId = `${idPrefix}-${String(o.healthyCars + m * o.carsPerMode + k + 1).padStart(4, '0')}`;
      const onsetTs = startTs + o.onsetMs + Math.floor((k * o.onsetSpreadMs) / o.carsPerMode);
      const truth: GroundTruth = { vehicleId, mode, onsetTs, rampMs: o.rampMs };
      if (mode === 'faulty_sensor') truth.sensor = EVAL_FAULTY_SENSORS[k % EVAL_FAULTY_SENSORS.length]!;
      out.push(truth);
    }
  });
  return out;
}

const ratio = (num: number, den: number): number | null => (den > 0 ? num / den : null);

function leadStats(values: number[]): Metrics['leadTimeS'] {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return { median: null, p90: null, min: null, max: null };
  return { median: percentile(sorted, 50), p90: percentile(sorted, 90), min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

function median(values: number[]): number | null {
  return values.length ? percentile(Float64Array.from(values).sort(), 50) : null;
}

/**
 * The metrics of scored windows against ground truth. Pure: windows in any order give the same
 * result. Cars not in `truth` are healthy.
 */
export function summarize(
  truth: readonly GroundTruth[],
  windows: readonly ScoredWindow[],
  threshold: number,
  modes: readonly FailureMode[],
): { healthy: EvaluationReport['healthy']; modes: ModeResult[]; overall: Metrics } {
  const truthOf = new Map(truth.map((t) => [t.vehicleId, t]));
  const cars = new Map<string, CarResult & { fullSeverityWindows: number; fullSeverityAlerts: number; healthyMs: number }>();
  for (const t of truth) {
    cars.set(t.vehicleId, {
      vehicleId: t.vehicleId,
      onsetTs: t.onsetTs,
      ...(t.sensor !== undefined ? { sensor: t.sensor } : {}),
      postOnsetWindows: 0,
      trueAlerts: 0,
      falseAlertsBeforeOnset: 0,
      firstAlertTs: null,
      leadTimeS: null,
      severityAtFirstAlert: null,
      fullSeverityWindows: 0,
      fullSeverityAlerts: 0,
      healthyMs: 0,
    });
  }
  const healthyCars = new Set<string>();
  let healthyWindows = 0;
  let healthyMs = 0;
  let healthyFalse = 0;
  let healthyMax = 0;
  for (const w of windows) {
    const alert = isAnomalous(w, { threshold }) || w.stuck === true;
    const t = truthOf.get(w.vehicleId);
    if (!t) {
      healthyCars.add(w.vehicleId);
      healthyWindows++;
      healthyMs += w.windowEnd - w.windowStart;
      if (alert) healthyFalse++;
      if (w.score > healthyMax) healthyMax = w.score;
      continue;
    }
    const c = cars.get(t.vehicleId)!;
    if (w.windowEnd <= t.onsetTs) {
      c.healthyMs += w.windowEnd - w.windowStart;
      if (alert) c.falseAlertsBeforeOnset++;
      continue;
    }
    c.postOnsetWindows++;
    const full = w.windowStart >= t.onsetTs + t.rampMs;
    if (full) c.fullSeverityWindows++;
    if (!alert) continue;
    c.trueAlerts++;
    if (full) c.fullSeverityAlerts++;
    if (c.firstAlertTs === null || w.windowEnd < c.firstAlertTs) c.firstAlertTs = w.windowEnd;
  }
  for (const c of cars.values()) {
    if (c.firstAlertTs === null) continue;
    const t = truthOf.get(c.vehicleId)!;
    c.leadTimeS = (c.firstAlertTs - t.onsetTs) / 1000;
    c.severityAtFirstAlert = t.rampMs > 0 ? Math.min(1, (c.firstAlertTs - t.onsetTs) / t.rampMs) : 1;
  }
  const metricsOf = (group: ReturnType<typeof cars.get>[]): Metrics => {
    const list = group.filter((c) => c !== undefined);
    const trueAlerts = list.reduce((a, c) => a + c.trueAlerts, 0);
    const falseAlerts = list.reduce((a, c) => a + c.falseAlertsBeforeOnset, 0) + healthyFalse;
    const hours = (list.reduce((a, c) => a + c.healthyMs, 0) + healthyMs) / 3_600_000;
    const full = list.reduce((a, c) => a + c.fullSeverityWindows, 0);
    const fullAlerts = list.reduce((a, c) => a + c.fullSeverityAlerts, 0);
    const detected = list.filter((c) => c.firstAlertTs !== null);
    return {
      cars: list.length,
      carsDetected: detected.length,
      recall: list.length ? detected.length / list.length : 0,
      trueAlerts,
      falseAlerts,
      precision: ratio(trueAlerts, trueAlerts + falseAlerts),
      fullSeverityWindows: full,
      fullSeverityWindowRecall: ratio(fullAlerts, full),
      healthyHours: hours,
      falseAlertsPerVehicleHour: hours > 0 ? falseAlerts / hours : 0,
      leadTimeS: leadStats(detected.map((c) => c.leadTimeS!)),
      medianSeverityAtFirstAlert: median(detected.map((c) => c.severityAtFirstAlert!)),
    };
  };
  const strip = (c: NonNullable<ReturnType<typeof cars.get>>): CarResult => {
    const { fullSeverityWindows: _f, fullSeverityAlerts: _a, healthyMs: _h, ...rest } = c;
    return rest;
  };
  const perMode = modes.map((mode) => {
    const group = truth.filter((t) => t.mode === mode).map((t) => cars.get(t.vehicleId));
    return { mode, ...metricsOf(group), perCar: group.map((c) => strip(c!)) };
  });
  return {
    healthy: { cars: healthyCars.size, windows: healthyWindows, hours: healthyMs / 3_600_000, falseAlerts: healthyFalse, maxScore: healthyMax },
    modes: perMode,
    overall: metricsOf(truth.map((t) => cars.get(t.vehicleId))),
  };
}

/** Checks options; throws RangeError naming the option. */
export function checkFleetOptions(o: FleetEvaluationOptions): void {
  const positiveInt = (name: string, v: number, min = 1): void => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  };
  positiveInt('seed', o.seed, 0);
  positiveInt('healthyCars', o.healthyCars, 0);
  positiveInt('carsPerMode', o.carsPerMode);
  positiveInt('windowSizeMs', o.windowSizeMs, 1000);
  if (o.modes.length === 0) throw new RangeError('modes: at least one failure mode');
  for (const m of o.modes) if (!FAILURE_MODES.includes(m)) throw new RangeError(`modes: unknown failure mode "${m}", expected ${FAILURE_MODES.join(', ')}`);
  if (new Set(o.modes).size !== o.modes.length) throw new RangeError('modes: a mode is listed twice');
  for (const [name, v] of [
    ['durationMs', o.durationMs],
    ['onsetMs', o.onsetMs],
    ['onsetSpreadMs', o.onsetSpreadMs],
    ['rampMs', o.rampMs],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be >= 0, got ${v}`);
  }
  if (o.onsetMs < o.windowSizeMs) throw new RangeError('onset must leave at least one healthy window before it');
  if (o.onsetMs + o.onsetSpreadMs >= o.durationMs) throw new RangeError('the last onset must lie before the end of the run');
  if (o.threshold !== undefined && !(Number.isFinite(o.threshold) && o.threshold > 0)) throw new RangeError(`threshold must be a positive number, got ${o.threshold}`);
}

/**
 * Simulates the evaluation fleet, scores every complete window with the model and summarizes.
 * Expects a deterministic tfjs backend to be active (bin/evaluation.ts uses cpu).
 */
export function evaluateFleet(
  model: ServableModel,
  meta: Pick<ModelMetadata, 'name' | 'version' | 'features' | 'normalization' | 'threshold' | 'window' | 'input'>,
  o: FleetEvaluationOptions,
  onProgress: (line: string) => void = () => {},
): EvaluationReport {
  checkFleetOptions(o);
  if (meta.input?.kind === 'reading') throw new RangeError(`${meta.name} v${meta.version} declares a reading input; the evaluation scores simulated windows`);
  // A model of a subset of the features (a declared window input) sees those, in its order.
  const project = meta.input === undefined ? (v: Float32Array): Float32Array => v : (v: Float32Array): Float32Array => featureVector(featureFields(v), meta.features);
  const startTs = TRAINING_EPOCH_TS;
  const truth = groundTruthFor(o, startTs);
  const failures: FailureSpec[] = truth.map((t) => ({ vehicleId: t.vehicleId, mode: t.mode, onsetTs: t.onsetTs, rampMs: t.rampMs, ...(t.sensor ? { sensor: t.sensor } : {}) }));
  const cars = o.healthyCars + truth.length;
  const windows = fleetWindows({ cars, seed: o.seed, idPrefix: 'eval', fromTs: startTs, toTs: startTs + o.durationMs, failures }, windowDef(o.windowSizeMs));
  onProgress(`simulated ${cars} cars x ${(o.durationMs / 60_000).toFixed(0)} min: ${windows.length} windows`);
  const scores = scoreVectors(
    model,
    meta,
    windows.map((w) => project(w.vector)),
  );
  onProgress(`scored ${scores.length} windows with ${meta.name} v${meta.version}`);
  const threshold = o.threshold ?? meta.threshold;
  // The detector sees each car's windows in window order, as scoring does.
  const detector = createStuckSensorDetector();
  const stuck = new Uint8Array(windows.length);
  const order = windows
    .map((_, i) => i)
    .sort((a, b) => (windows[a]!.vehicleId < windows[b]!.vehicleId ? -1 : windows[a]!.vehicleId > windows[b]!.vehicleId ? 1 : windows[a]!.windowStart - windows[b]!.windowStart));
  for (const i of order) {
    const w = windows[i]!;
    if (detector.observe(stuckWindowOf(w.vehicleId, w.windowStart, w.windowStart + o.windowSizeMs, w.events, w.vector)).length) stuck[i] = 1;
  }
  const scored: ScoredWindow[] = windows.map((w, i) => ({
    vehicleId: w.vehicleId,
    windowStart: w.windowStart,
    windowEnd: w.windowStart + o.windowSizeMs,
    score: scores[i]!.score,
    stuck: stuck[i] === 1,
  }));
  const summary = summarize(truth, scored, threshold, o.modes);
  const modelOnly = summarize(
    truth,
    scored.map((w) => ({ ...w, stuck: false })),
    threshold,
    o.modes,
  );
  const modeOf = new Map(truth.map((t) => [t.vehicleId, t.mode]));
  const stuckSensor = { healthyWindows: 0, failingWindows: 0, byMode: Object.fromEntries(o.modes.map((m) => [m, 0])) as Record<string, number> };
  for (const w of scored) {
    if (!w.stuck) continue;
    const mode = modeOf.get(w.vehicleId);
    if (mode === undefined) stuckSensor.healthyWindows++;
    else {
      stuckSensor.failingWindows++;
      stuckSensor.byMode[mode]!++;
    }
  }
  onProgress(`stuck-sensor detector: ${stuckSensor.failingWindows} windows of failing cars, ${stuckSensor.healthyWindows} of healthy cars`);
  // The first car of each mode, as an example timeline (the picture draws these).
  const examples: ExampleSeries[] = o.modes.map((mode) => {
    const t = truth.find((x) => x.mode === mode)!;
    return {
      mode,
      vehicleId: t.vehicleId,
      onsetTs: t.onsetTs,
      fullSeverityTs: t.onsetTs + t.rampMs,
      points: scored
        .filter((w) => w.vehicleId === t.vehicleId)
        .sort((a, b) => a.windowEnd - b.windowEnd)
        .map((w) => [w.windowEnd, w.score] as [number, number]),
    };
  });
  return {
    schema: EVALUATION_SCHEMA,
    model: { name: meta.name, version: meta.version, threshold, thresholdSource: o.threshold === undefined ? 'model' : 'override', modelThreshold: meta.threshold },
    fleet: { ...o, modes: [...o.modes], startTs, rateHz: 1, failingCars: truth.length },
    definitions: { ...DEFINITIONS },
    healthy: summary.healthy,
    modes: summary.modes,
    overall: summary.overall,
    modelOnly,
    stuckSensor,
    groundTruth: truth,
    examples,
    windows: windows.length,
  };
}

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const secs = (x: number | null): string => (x === null ? '-' : `${Math.round(x)} s`);

/** The readable table (also evaluation.txt and docs/models.md). */
export function formatReport(r: EvaluationReport): string {
  const f = r.fleet;
  const head = ['mode', 'cars', 'recall', 'precision', 'false/veh-h', 'lead p50', 'lead p90', 'sev@1st', 'full-sev win'];
  const rows: string[][] = [...r.modes.map((m) => [m.mode, ...cells(m)]), ['overall', ...cells(r.overall)]];
  function cells(m: Metrics): string[] {
    return [
      String(m.cars),
      `${m.carsDetected}/${m.cars}`,
      pct(m.precision),
      m.falseAlertsPerVehicleHour.toFixed(3),
      secs(m.leadTimeS.median),
      secs(m.leadTimeS.p90),
      m.medianSeverityAtFirstAlert === null ? '-' : m.medianSeverityAtFirstAlert.toFixed(2),
      pct(m.fullSeverityWindowRecall),
    ];
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `model ${r.model.name} v${r.model.version}, threshold ${r.model.threshold}${r.model.thresholdSource === 'override' ? ` (override; model: ${r.model.modelThreshold})` : ''}`,
    `fleet: seed ${f.seed}, ${f.healthyCars} healthy cars + ${f.carsPerMode} per mode, ${f.durationMs / 60_000} min at ${f.rateHz} Hz, ` +
      `${f.windowSizeMs / 1000} s windows; onsets ${f.onsetMs / 60_000}-${(f.onsetMs + f.onsetSpreadMs) / 60_000} min, ramp ${f.rampMs / 60_000} min`,
    line(head),
    ...rows.map(line),
    `healthy cars: ${r.healthy.cars} cars, ${r.healthy.windows} windows (${r.healthy.hours.toFixed(1)} h), ${r.healthy.falseAlerts} false alerts, max score ${r.healthy.maxScore.toPrecision(4)}`,
    ...detectorLines(r),
    'recall: cars with an alert after onset; precision: alert windows; false/veh-h: false alert windows per healthy vehicle-hour;',
    'lead: onset -> end of the first alerting window; sev@1st: ramp fraction reached then; full-sev win: windows after the ramp that alert.',
  ].join('\n');
}

/** Model alone -> model + stuck-sensor detector, for the rows the detector is about. */
function detectorLines(r: EvaluationReport): string[] {
  const before = r.modelOnly;
  const row = (name: string, a: Metrics, b: Metrics): string =>
    `  ${name.padEnd(14)} full-sev win ${pct(a.fullSeverityWindowRecall)} -> ${pct(b.fullSeverityWindowRecall)}, recall ${a.carsDetected}/${a.cars} -> ${b.carsDetected}/${b.cars}, ` +
    `precision ${pct(a.precision)} -> ${pct(b.precision)}, lead p50 ${secs(a.leadTimeS.median)} -> ${secs(b.leadTimeS.median)}`;
  const by = Object.entries(r.stuckSensor.byMode)
    .map(([m, n]) => `${m} ${n}`)
    .join(', ');
  const out = [`stuck-sensor detector (model alone -> with the detector, as served): windows called stuck: ${by}`];
  const fsBefore = before.modes.find((m) => m.mode === 'faulty_sensor');
  const fsAfter = r.modes.find((m) => m.mode === 'faulty_sensor');
  if (fsBefore && fsAfter) out.push(row('faulty_sensor', fsBefore, fsAfter));
  out.push(row('overall', before.overall, r.overall));
  out.push(`  healthy cars   false alerts ${before.healthy.falseAlerts} -> ${r.healthy.falseAlerts} (${r.stuckSensor.healthyWindows} windows called stuck)`);
  return out;
}
