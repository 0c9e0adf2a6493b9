/**
 * Feature math shared by the windowing service (serving) and model training, so the two can never
 * compute features differently. Everything here is a pure function of explicit timestamps.
 *
 * A window's feature vector is, for each sensor in SENSORS order, the aggregates in AGGREGATES
 * order: `${sensor}_${aggregate}`. The same list is committed as data in
 * schemas/features/feature-spec.json, which model metadata refers to; a unit test keeps the two equal.
 */
import { SENSORS, SENSOR_NAMES } from './sensors.js';

export const AGGREGATES = Object.freeze(['mean', 'std', 'min', 'max', 'last', 'slope'] as const);
export type Aggregate = (typeof AGGREGATES)[number];

export const FEATURE_NAMES: readonly string[] = Object.freeze(SENSORS.flatMap((sensor) => AGGREGATES.map((agg) => `${sensor.name}_${agg}`)));

/** Feature name -> its index in FEATURE_NAMES. */
export const FEATURE_INDEX: ReadonlyMap<string, number> = new Map(FEATURE_NAMES.map((f, i) => [f, i]));

export const FEATURE_SPEC_ID = 'pitwall-features-v1';

/** One reading inside a window: event time plus sensor values in SENSOR_NAMES order. */
export interface WindowEvent {
  readonly ts: number;
  readonly values: ArrayLike<number>;
}

/**
 * Aggregates of one window. Events are sorted by event time first, so the result does not depend on
 * the order in which they arrived. Standard deviation is the population one; slope is the
 * least-squares slope of value over event time in units per second (0 when all events share one
 * timestamp); `last` is the value at the greatest event time.
 */
export function computeFeatures(events: readonly WindowEvent[]): Float64Array {
  const sensors = SENSOR_NAMES.length;
  const out = new Float64Array(sensors * AGGREGATES.length);
  if (events.length === 0) return out.fill(Number.NaN);
  const sorted = [...events].sort((a, b) => a.ts - b.ts);
  const n = sorted.length;
  const t0 = sorted[0]!.ts;
  let tMean = 0;
  for (const e of sorted) tMean += (e.ts - t0) / 1000;
  tMean /= n;
  let tVar = 0;
  for (const e of sorted) {
    const dt = (e.ts - t0) / 1000 - tMean;
    tVar += dt * dt;
  }
  for (let s = 0; s < sensors; s++) {
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const e of sorted) {
      const v = e.values[s]!;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const mean = sum / n;
    let sq = 0;
    let cov = 0;
    for (const e of sorted) {
      const d = e.values[s]! - mean;
      sq += d * d;
      cov += d * ((e.ts - t0) / 1000 - tMean);
    }
    const base = s * AGGREGATES.length;
    out[base] = mean;
    out[base + 1] = Math.sqrt(sq / n);
    out[base + 2] = min;
    out[base + 3] = max;
    out[base + 4] = sorted[n - 1]!.values[s]!;
    out[base + 5] = tVar === 0 ? 0 : cov / tVar;
  }
  return out;
}

/**
 * Feature vector -> named fields, as carried by the `vehicle.features` record, set on `into` (a
 * new object by default). Build a record by passing its other fields as `into`: spreading the 108
 * fields into an object literal instead took 54 µs per record (V8 copies that many properties on a
 * slow path), 7.6 µs this way — a third of windowing's CPU at 100,000 vehicles and 0.1 Hz.
 */
export function featureFields(vector: ArrayLike<number>): Record<string, number>;
export function featureFields<T extends object>(vector: ArrayLike<number>, into: T): T & Record<string, number>;
export function featureFields(vector: ArrayLike<number>, into: object = {}): Record<string, number> {
  const fields = into as Record<string, number>;
  for (let i = 0; i < FEATURE_NAMES.length; i++) fields[FEATURE_NAMES[i]!] = vector[i]!;
  return fields;
}

/** Named fields (a decoded `vehicle.features` record) -> feature vector in `names` order (default FEATURE_NAMES). */
export function featureVector(record: Readonly<Record<string, unknown>>, names: readonly string[] = FEATURE_NAMES): Float32Array {
  const out = new Float32Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const v = record[names[i]!];
    if (typeof v !== 'number') throw new TypeError(`feature ${names[i]} missing from record`);
    out[i] = v;
  }
  return out;
}

interface Layout {
  /** Own property count of the records the layout was taken from. */
  keys: number;
  at: Int32Array;
}

/** Per record class and names list: where each name sits among the records' own properties. */
const layouts = new WeakMap<object, WeakMap<readonly string[], Layout | null>>();

function layoutOf(record: object, proto: object, names: readonly string[]): Layout | null {
  let byNames = layouts.get(proto);
  if (!byNames) layouts.set(proto, (byNames = new WeakMap()));
  let layout = byNames.get(names);
  if (layout === undefined) {
    const keys = Object.keys(record);
    const at = new Map(keys.map((k, i) => [k, i]));
    layout = names.every((n) => at.has(n)) ? { keys: keys.length, at: Int32Array.from(names, (n) => at.get(n)!) } : null;
    byNames.set(names, layout);
  }
  return layout;
}

/**
 * featureVector for records exactly as an Avro decoder returned them, on the scoring hot path. avsc
 * decodes every record of a schema into one generated class whose constructor sets the fields in
 * schema order, so they are read by position from Object.values: a fraction of the cost of 108
 * lookups by name, which profiling found at 8 % of a scoring chunk. The contract: the record was
 * not changed after decoding (a key deleted and added again would move). Plain objects, and
 * records with another key count than their class's first, are read by name.
 */
export function featureVectorOfDecoded(record: Readonly<Record<string, unknown>>, names: readonly string[] = FEATURE_NAMES): Float32Array {
  const proto = Object.getPrototypeOf(record) as object | null;
  const layout = proto !== null && proto !== Object.prototype ? layoutOf(record, proto, names) : null;
  if (layout === null) return featureVector(record, names);
  const values = Object.values(record);
  if (values.length !== layout.keys) return featureVector(record, names);
  const out = new Float32Array(names.length);
  const at = layout.at;
  for (let i = 0; i < at.length; i++) {
    const v = values[at[i]!];
    if (typeof v !== 'number') throw new TypeError(`feature ${names[i]} missing from record`);
    out[i] = v;
  }
  return out;
}

/**
 * The size (ms) of the window definition a `vehicle.features` record belongs to: the definition its
 * record names (features v2 window_size_ms), else window_end - window_start (v1 records).
 */
export function windowSizeOf(record: { window_start: number; window_end: number; window_size_ms?: number | null | undefined }): number {
  return typeof record.window_size_ms === 'number' ? record.window_size_ms : record.window_end - record.window_start;
}
