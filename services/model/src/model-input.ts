/**
 * What a model takes as input, declared in its metadata (`input`), for models made outside Pitwall:
 *
 *   { "kind": "window",  "features": ["coolant_temp_mean", "speed_max", ...],
 *     "scaling": { "method": "zscore", "mean": [...], "std": [...] } }
 *   { "kind": "reading", "sensors": ["intake_air_temp", "speed", ...],
 *     "scaling": { "method": "minmax", "min": [...], "max": [...], "range": [-1, 1] } }
 *
 * The vocabulary is Pitwall's: a window model takes any subset of the pitwall-features-v1 features
 * (`<sensor>_<aggregate>`, 18 sensors x 6 aggregates) in any order, a reading model the raw values of
 * named sensors of one telemetry reading. Every input belongs to exactly one sensor, so per-sensor
 * error shares (alert contributors) work for both. Scaling values are in Pitwall's canonical units
 * (what ingest writes after the fleet profile converted a reading); the importer converts ranges
 * given in a fleet's own units once (`scaling.units`, model-lab's model-import.ts), so a served
 * metadata.json never carries a fleet unit.
 *
 * Metadata without `input` is what every model was before: the 108 features in FEATURE_NAMES order,
 * z-scored with `normalization`. Both forms come down to one affine step per input, (x - offset) /
 * divisor (z-score: mean and std; min-max to [lo, hi]: divisor (max - min) / (hi - lo), offset
 * min - lo x divisor), which is what scoreBatch applies: for a model without `input` exactly the
 * float32 operations it always did.
 */
import { AGGREGATES, FEATURE_NAMES, SENSOR_NAMES } from '@pitwall/common';

export type InputKind = 'window' | 'reading';

export interface InputScaling {
  method: 'zscore' | 'minmax';
  mean?: number[];
  std?: number[];
  min?: number[];
  max?: number[];
  /** minmax: the interval [min, max] is mapped onto, e.g. [-1, 1] (cardata-v3.py) or [0, 1]. */
  range?: [number, number];
  /**
   * The fleet profile whose units the values are in. Only the importer reads it (and converts); a
   * served metadata.json has none, or "pitwall".
   */
  units?: string;
}

export interface ModelInput {
  kind: InputKind;
  /** kind window: feature names `<sensor>_<aggregate>`, in input order. */
  features?: string[];
  /** kind reading: sensor names, in input order. */
  sensors?: string[];
  scaling: InputScaling;
  [extra: string]: unknown;
}

/** The input as scoring applies it. */
export interface ResolvedInput {
  kind: InputKind;
  /** Record fields read in input order: feature names (window) or sensor names (reading). */
  names: string[];
  /** Per input, (x - offset) / divisor. */
  offset: number[];
  divisor: number[];
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Input names a model of `kind` may ask for. */
export function inputVocabulary(kind: InputKind): readonly string[] {
  return kind === 'window' ? FEATURE_NAMES : SENSOR_NAMES;
}

/** The names a declaration lists (features or sensors by kind), undefined when missing. */
export function declaredNames(input: Pick<ModelInput, 'kind' | 'features' | 'sensors'>): string[] | undefined {
  return input.kind === 'window' ? input.features : input.sensors;
}

/**
 * What is wrong with an `input` declaration, or undefined. `served`: the declaration of a served
 * metadata.json, whose scaling must already be in Pitwall's units.
 */
export function describeInputProblem(raw: unknown, opts: { served: boolean }): string | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'input must be an object {"kind": "window" | "reading", "features" | "sensors": [...], "scaling": {...}}';
  const i = raw as Partial<ModelInput>;
  if (i.kind !== 'window' && i.kind !== 'reading') return `input.kind is ${JSON.stringify(i.kind)}: "window" (window features) or "reading" (raw readings of named sensors)`;
  const key = i.kind === 'window' ? 'features' : 'sensors';
  const other = i.kind === 'window' ? 'sensors' : 'features';
  if (i[other] !== undefined) return `input.${other} does not belong to a ${i.kind} input (it lists input.${key})`;
  const names = i[key];
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) return `input.${key} must be a non-empty array of names`;
  const vocabulary = new Set(inputVocabulary(i.kind));
  const unknown = names.filter((n) => !vocabulary.has(n));
  if (unknown.length) {
    const what = i.kind === 'window' ? `features <sensor>_<aggregate> (aggregates: ${AGGREGATES.join(', ')})` : 'sensors';
    return `input.${key} names unknown ${i.kind === 'window' ? 'features' : 'sensors'}: ${unknown.join(', ')} (known ${what}: ${SENSOR_NAMES.join(', ')})`;
  }
  const seen = new Set<string>();
  const twice = names.find((n) => (seen.has(n) ? true : (seen.add(n), false)));
  if (twice !== undefined) return `input.${key} lists ${twice} twice`;
  return describeScalingProblem(i.scaling, names, opts);
}

function describeScalingProblem(raw: unknown, names: readonly string[], opts: { served: boolean }): string | undefined {
  const n = names.length;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'input.scaling must be {"method": "zscore", "mean", "std"} or {"method": "minmax", "min", "max", "range"}';
  const s = raw as Partial<InputScaling>;
  if (s.units !== undefined && (typeof s.units !== 'string' || s.units === '')) return 'input.scaling.units must be a fleet profile name';
  if (opts.served && s.units !== undefined && s.units !== 'pitwall') {
    return `input.scaling.units is "${s.units}": a served model's scaling is in Pitwall's units; import it with npm run import-model, which converts it`;
  }
  const arrays = s.method === 'zscore' ? (['mean', 'std'] as const) : s.method === 'minmax' ? (['min', 'max'] as const) : undefined;
  if (!arrays) return `input.scaling.method is ${JSON.stringify(s.method)}: "zscore" or "minmax"`;
  for (const key of arrays) {
    const a = s[key];
    if (!Array.isArray(a)) return `input.scaling.${key} must be an array of ${n} numbers (one per input)`;
    if (a.length !== n) return `input.scaling.${key} has ${a.length} values for ${n} inputs`;
    const bad = a.findIndex((v) => !isFiniteNumber(v));
    if (bad >= 0) return `input.scaling.${key} of ${names[bad]} is not a finite number (${JSON.stringify(a[bad])})`;
  }
  const foreign = (['mean', 'std', 'min', 'max', 'range'] as const).filter((k) => s[k] !== undefined && !(arrays as readonly string[]).includes(k) && !(k === 'range' && s.method === 'minmax'));
  if (foreign.length) return `input.scaling.${foreign[0]} does not belong to ${s.method} scaling`;
  if (s.method === 'zscore') {
    const bad = s.std!.findIndex((v) => v <= 0);
    if (bad >= 0) return `input.scaling.std of ${names[bad]} is ${s.std![bad]}: it must be positive`;
    return undefined;
  }
  const equal = s.min!.findIndex((v, j) => v === s.max![j]);
  if (equal >= 0) return `input.scaling min == max (${s.min![equal]}) for ${names[equal]}: a constant input cannot be scaled`;
  const reversed = s.min!.findIndex((v, j) => v > s.max![j]!);
  if (reversed >= 0) return `input.scaling min ${s.min![reversed]} is above max ${s.max![reversed]} for ${names[reversed]}`;
  const r = s.range;
  if (!Array.isArray(r) || r.length !== 2 || !r.every(isFiniteNumber) || r[0] >= r[1]) return 'input.scaling.range must be [lo, hi] with lo < hi (e.g. [-1, 1] or [0, 1])';
  return undefined;
}

/** The affine step of a validated declaration. */
export function resolveInput(input: ModelInput): ResolvedInput {
  const names = [...declaredNames(input)!];
  const s = input.scaling;
  if (s.method === 'zscore') return { kind: input.kind, names, offset: [...s.mean!], divisor: [...s.std!] };
  const [lo, hi] = s.range!;
  const divisor = s.min!.map((min, j) => (s.max![j]! - min) / (hi - lo));
  const offset = s.min!.map((min, j) => min - lo * divisor[j]!);
  return { kind: input.kind, names, offset, divisor };
}

/** The input kind of a metadata: "window" unless it declares a reading input. */
export function inputKindOf(meta: { input?: Pick<ModelInput, 'kind'> | undefined }): InputKind {
  return meta.input?.kind ?? 'window';
}
