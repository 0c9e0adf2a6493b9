/**
 * Importing a model trained elsewhere as a Pitwall model version (models/<name>/<version>/):
 * a Keras .keras archive (keras-archive.ts) or whole-model .h5 (keras-h5.ts), or a
 * tensorflowjs_converter output (model.json plus its weight shards), layers or graph format
 * (servable.ts); a graph model keeps its signature and the converter's metadata, its shards are
 * joined into one weights.bin. A model must map Pitwall's 108 features to their reconstruction
 * (checkFeatureWidth). The model itself carries no normalization or threshold, so the user
 * supplies the metadata (metadata.json fields, see ModelMetadata); what can be defaulted is, the
 * rest is listed in one error.
 *
 * The version directory is written under a temporary name next to its final place, loaded back
 * with loadModelDir (the same validation the scorer applies) and only then renamed, so a scorer
 * watching the models folder never sees a half-written or invalid version.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { FEATURE_NAMES, FEATURE_SPEC_ID, loadFleetProfile, type FleetProfile } from '@pitwall/common';
import { loadKerasModel } from './keras-archive.js';
import { ModelImportError } from './keras-model.js';
import {
  describeInputProblem,
  describeWindowProblem,
  formatOf,
  inputLabel,
  type ModelInput,
  loadModelDir,
  type ModelFormat,
  modelFromJSON,
  type ModelMetadata,
  readModelJSON,
  saveModelDir,
  type ServableModel,
  signatureOf,
  validateMetadata,
  validateModel,
} from '@pitwall/model';
import { groupDescriptions, RATE_HZ, WINDOW_SIZE_MS } from './training.js';

export { ModelImportError } from './keras-model.js';

/** keras: a .keras archive or a whole-model .h5, told apart by content; tfjs: a converter's model.json. */
export type ImportFormat = 'keras' | 'tfjs';

/** Where the imported model came from; stored in metadata.json as imported_from. */
export interface ImportedFrom {
  format: 'keras-h5' | 'keras' | 'tfjs-layers' | 'tfjs-graph';
  file: string;
  keras_version?: string | null;
  backend?: string | null;
  generated_by?: string | null;
  converted_by?: string | null;
  imported_at: string;
}

export interface ImportModelOptions {
  format: ImportFormat;
  /** The .keras or .h5 file, or the model.json of a tensorflowjs_converter output. */
  file: string;
  name: string;
  version: string;
  /** The user's metadata (parsed JSON object); completed by completeMetadata. */
  metadata: unknown;
  /** Where the metadata came from (its file), for error messages; default: `file`. */
  metadataSource?: string;
  modelsDir: string;
  /** Replace an existing version directory. */
  force?: boolean;
  /** Where fleet profiles named by the metadata are found (default: schemas/fleet-profiles). */
  profilesDir?: string;
  now?: () => number;
}

export interface ImportResult {
  dir: string;
  metadata: ModelMetadata;
}

/** Fields without a sensible default: what the model was trained on and where it alerts. */
const REQUIRED = ['features', 'normalization.mean', 'normalization.std', 'threshold'] as const;
/** The same for a model declaring its input (model-input.ts in @pitwall/model). */
const REQUIRED_WITH_INPUT = ['threshold'] as const;

function fieldAt(obj: Record<string, unknown>, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
}

/**
 * The user's metadata with defaults filled in: name and version from the command line,
 * featureSpec, window (the 10 s / 1 Hz windows the features are computed over), groups,
 * createdAt, a description, and placeholders for training provenance the importer cannot know.
 * Throws ModelImportError listing every missing required field.
 */
export function completeMetadata(raw: unknown, o: { name: string; version: string; importedFrom: ImportedFrom; source: string; profilesDir?: string | undefined }): ModelMetadata {
  const where = o.source;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelImportError(where, 'the metadata must be a JSON object');
  let user = raw as Record<string, unknown>;
  if (user.input !== undefined) user = { ...user, ...convertInput(user, where, o.profilesDir) };
  const missing = (user.input === undefined ? REQUIRED : REQUIRED_WITH_INPUT).filter((f) => fieldAt(user, f) === undefined || fieldAt(user, f) === null);
  if (missing.length && user.input !== undefined) throw new ModelImportError(where, `metadata is missing required field(s): ${missing.join(', ')} (threshold: score above which an input alerts)`);
  if (missing.length) {
    throw new ModelImportError(
      where,
      `metadata is missing required field(s): ${missing.join(', ')} ` +
        `(features: the ${FEATURE_NAMES.length} ${FEATURE_SPEC_ID} feature names in input order; normalization: per-feature mean and std of the training data; threshold: score above which a window alerts)`,
    );
  }
  for (const key of ['name', 'version'] as const) {
    if (user[key] !== undefined && user[key] !== o[key]) {
      throw new ModelImportError(where, `metadata ${key} is ${JSON.stringify(user[key])} but the import writes ${key} ${JSON.stringify(o[key])}; remove it or make them agree`);
    }
  }
  if (user.window !== undefined) {
    const problem = describeWindowProblem(user.window);
    if (problem) throw new ModelImportError(where, `metadata ${problem}`);
  }
  const from = o.importedFrom;
  return {
    description: `${from.format} model imported from ${path.basename(from.file)}${from.keras_version ? ` (Keras ${from.keras_version})` : ''}`,
    featureSpec: FEATURE_SPEC_ID,
    thresholdMethod: 'supplied with the imported model',
    window: { sizeMs: WINDOW_SIZE_MS, rateHz: RATE_HZ },
    // Unknown to the importer: zeros, marked by the source text, unless the user supplies them.
    trainingData: { source: `unknown (imported ${from.format})`, cars: 0, seed: 0, fromTs: 0, toTs: 0, windows: 0 },
    trainingMetrics: { finalLoss: 0, valLoss: 0, healthyScoreP50: 0, healthyScoreP99: 0, healthyScoreMax: 0, supplied: false },
    createdAt: from.imported_at,
    groups: groupDescriptions(),
    ...Object.fromEntries(Object.entries(user).filter(([, v]) => v !== undefined)),
    ...(user.input !== undefined && user.description === undefined
      ? { description: `${from.format} model imported from ${path.basename(from.file)}${from.keras_version ? ` (Keras ${from.keras_version})` : ''}, ${describeInput(user.input as ModelInput)}` }
      : {}),
    name: o.name,
    version: o.version,
    imported_from: from,
  } as unknown as ModelMetadata;
}

const quote = (p: string): string => JSON.stringify(p);

const describeInput = (input: ModelInput): string =>
  input.kind === 'reading' ? `one reading of ${input.sensors!.length} sensors, ${input.scaling.method} scaled` : `${input.features!.length} window features, ${input.scaling.method} scaled`;

/** Aggregates whose value is a difference of readings: a unit's offset cancels, only its scale applies. */
const OFFSET_FREE = new Set(['std', 'slope']);

/**
 * A declared input as the served metadata keeps it: its names may be the fleet's own payload
 * fields (`field` in the profile) and its scaling in the fleet's units (`scaling.units`, a fleet
 * profile); both are turned into Pitwall's, once. The profile is scaling.units, else the
 * metadata's fleetProfile, else pitwall. A name the profile cannot map is an input the fleet does
 * not send: refused, naming the names and the profile.
 */
function convertInput(user: Record<string, unknown>, where: string, profilesDir?: string): { input: ModelInput; fleetProfile?: string } {
  const input = user.input as ModelInput;
  // Names are checked against the profile below, the scaling once they are Pitwall's.
  if (!input || typeof input !== 'object' || (input.kind !== 'window' && input.kind !== 'reading')) {
    throw new ModelImportError(where, `metadata ${describeInputProblem(input, { served: false })}`);
  }
  const key = input.kind === 'window' ? 'features' : 'sensors';
  const names = input[key];
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) throw new ModelImportError(where, `metadata input.${key} must be a non-empty array of names`);
  const units = input.scaling && typeof input.scaling === 'object' ? input.scaling.units : undefined;
  const fleetProfile = user.fleetProfile;
  if (units !== undefined && units !== 'pitwall' && fleetProfile !== undefined && fleetProfile !== units) {
    throw new ModelImportError(
      where,
      `metadata input.scaling.units is ${quote(String(units))} but fleetProfile is ${JSON.stringify(fleetProfile)}: the scaling must be in the units of the fleet the model was made for`,
    );
  }
  const profileName = typeof units === 'string' ? units : typeof fleetProfile === 'string' ? fleetProfile : 'pitwall';
  let profile: FleetProfile;
  try {
    profile = loadFleetProfile(profileName, units !== undefined ? 'input.scaling.units' : 'fleetProfile', profilesDir);
  } catch (err) {
    throw new ModelImportError(where, `metadata ${(err as Error).message}`, err);
  }
  const byField = new Map(profile.sensors.map((m) => [m.field, m]));
  const bySensor = new Map(profile.sensors.map((m) => [m.sensor, m]));
  // Each name -> [Pitwall name, the sensor's mapping, the aggregate (window) or undefined].
  const resolved = names.map((name) => {
    if (input.kind === 'reading') {
      const m = bySensor.get(name) ?? byField.get(name);
      return m && { name: m.sensor, m, aggregate: undefined };
    }
    const cut = name.lastIndexOf('_');
    const aggregate = name.slice(cut + 1);
    const m = bySensor.get(name.slice(0, cut)) ?? byField.get(name.slice(0, cut));
    return m && cut > 0 && FEATURE_NAMES.includes(`${m.sensor}_${aggregate}`) ? { name: `${m.sensor}_${aggregate}`, m, aggregate } : undefined;
  });
  const missing = names.filter((_, i) => resolved[i] === undefined);
  if (missing.length) {
    const sends = profile.sensors.map((m) => (m.field === m.sensor ? m.sensor : `${m.field} (${m.sensor})`)).join(', ');
    const asked = input.kind === 'window' ? `window features (<sensor or field>_<aggregate>, aggregates ${['mean', 'std', 'min', 'max', 'last', 'slope'].join(', ')})` : 'sensor readings';
    throw new ModelImportError(where, `the model asks for ${missing.map((n) => quote(n)).join(', ')}, which fleet profile ${quote(profile.name)} does not send (as ${asked}; it sends: ${sends})`);
  }
  const out: ModelInput = { ...input, [key]: resolved.map((r) => r!.name) };
  const scaling = input.scaling;
  if (units !== undefined && scaling && typeof scaling === 'object') {
    const problem = describeInputProblem({ ...out, scaling: { ...scaling, units: undefined } }, { served: true });
    if (problem) throw new ModelImportError(where, `metadata ${problem}`);
    const value = (v: number, j: number): number => {
      const r = resolved[j]!;
      return OFFSET_FREE.has(r.aggregate ?? '') ? v * r.m.scale : v * r.m.scale + r.m.offset;
    };
    const spread = (v: number, j: number): number => v * resolved[j]!.m.scale;
    const { units: _units, ...rest } = scaling;
    out.scaling = scaling.method === 'zscore' ? { ...rest, mean: scaling.mean!.map(value), std: scaling.std!.map(spread) } : { ...rest, min: scaling.min!.map(value), max: scaling.max!.map(value) };
    if (!profile.identity) out.convertedFrom = { units: profile.name, names, scaling };
  }
  const problem = describeInputProblem(out, { served: true });
  if (problem) throw new ModelImportError(where, `metadata ${problem}`);
  return profile.name === 'pitwall' && fleetProfile === undefined ? { input: out } : { input: out, fleetProfile: profile.name };
}

export interface TfjsModel {
  model: ServableModel;
  format: ModelFormat;
  generatedBy: string | null;
  convertedBy: string | null;
}

/**
 * Loads a tensorflowjs_converter output from its model.json, in either format: a layers model
 * (converted Keras model) or a graph model (converted SavedModel or frozen graph). Weight shard
 * paths are relative to model.json and must stay in its directory.
 */
export async function loadTfjsModel(file: string): Promise<TfjsModel> {
  const fail = (message: string, cause?: unknown): Error => new ModelImportError(file, message, cause);
  const json = await readModelJSON(file, fail);
  const model = await modelFromJSON(path.dirname(path.resolve(file)), json, fail);
  return { model, format: formatOf(model), generatedBy: json.generatedBy ?? null, convertedBy: json.convertedBy ?? null };
}

/**
 * A Pitwall model maps the z-scored features of a window, [batch, 108], to their reconstruction of
 * the same shape. A model made for other data (another set of sensors) is refused here, naming
 * its widths, before its metadata is looked at (no feature list could make it fit).
 */
export function checkFeatureWidth(file: string, model: ServableModel, declared?: ModelInput): void {
  const n = declared ? (declared.kind === 'window' ? declared.features : declared.sensors)?.length : FEATURE_NAMES.length;
  if (n === undefined) return;
  const { inputs, outputs } = signatureOf(model);
  // Other signatures (several inputs, other ranks) are refused by validateModel.
  if (inputs.length !== 1 || outputs.length !== 1 || inputs[0]!.shape?.length !== 2 || outputs[0]!.shape?.length !== 2) return;
  const [input, output] = [inputs[0]!.shape, outputs[0]!.shape];
  const fits = (w: number | null | undefined): boolean => w === n || w === null;
  if (fits(input[1]) && fits(output[1])) return;
  const shown = (shape: unknown): string => JSON.stringify(shape);
  if (declared) {
    throw new ModelImportError(
      file,
      `the model takes ${input[1] ?? 'any number of'} values per row (input ${shown(input)}) and returns ${output[1] ?? 'any number of'} (output ${shown(output)}), ` +
        `but its metadata input declares ${n} ${declared.kind === 'window' ? 'window features' : 'sensor readings'} (input.${declared.kind === 'window' ? 'features' : 'sensors'}): the declaration must list one name per model input`,
    );
  }
  throw new ModelImportError(
    file,
    `the model takes ${input[1] ?? 'any number of'} values per row (input ${shown(input)}) and returns ${output[1] ?? 'any number of'} (output ${shown(output)}); ` +
      `a Pitwall model takes the ${n} features of ${FEATURE_SPEC_ID} (input [null,${n}]) and returns their reconstruction (output [null,${n}]). ` +
      'This model was made for other data: declare what it takes (an "input" in the metadata, or --input; docs/models.md) or retrain it on Pitwall features',
  );
}

/** Imports a model into `<modelsDir>/<name>/<version>/` and returns the written directory and metadata. */
export async function importModel(o: ImportModelOptions): Promise<ImportResult> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(o.name)) throw new ModelImportError(o.file, `model name ${quote(o.name)} must be letters, digits, ".", "_" or "-"`);
  if (!/^[1-9][0-9]*$/.test(o.version)) throw new ModelImportError(o.file, `version must be a positive integer, got ${quote(o.version)}`);
  const now = o.now ?? Date.now;
  const target = path.join(o.modelsDir, o.name, o.version);
  if (!o.force && (await stat(target).catch(() => undefined))) throw new ModelImportError(o.file, `${target} exists; pick another version or pass --force`);

  let model: ServableModel;
  let importedFrom: ImportedFrom;
  const importedAt = new Date(now()).toISOString();
  if (o.format === 'keras') {
    const k = await loadKerasModel(o.file);
    model = k.model;
    importedFrom = { format: k.format, file: path.basename(o.file), keras_version: k.kerasVersion ?? null, backend: k.backend ?? null, imported_at: importedAt };
  } else {
    const t = await loadTfjsModel(o.file);
    model = t.model;
    importedFrom = {
      format: t.format === 'graph-model' ? 'tfjs-graph' : 'tfjs-layers',
      file: path.basename(o.file),
      generated_by: t.generatedBy,
      converted_by: t.convertedBy,
      imported_at: importedAt,
    };
  }
  const tmp = path.join(o.modelsDir, o.name, `.import-${o.version}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    // Without a declared input the model must fit the 108 features, whatever its metadata says.
    const declared = !!o.metadata && typeof o.metadata === 'object' && (o.metadata as Record<string, unknown>).input !== undefined;
    if (!declared) checkFeatureWidth(o.file, model);
    const metadata = completeMetadata(o.metadata, { name: o.name, version: o.version, importedFrom, source: o.metadataSource ?? o.file, profilesDir: o.profilesDir });
    if (declared) checkFeatureWidth(o.file, model, metadata.input);
    // Same checks as loadModelDir, before anything is written; errors name the target directory.
    const served = validateMetadata(target, metadata);
    validateModel(target, model, served.features.length, inputLabel(served));
    await saveModelDir(tmp, model, metadata);
    const check = await loadModelDir(tmp);
    check.model.dispose();
    if (o.force) await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
    return { dir: target, metadata: served };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    model.dispose();
  }
}
