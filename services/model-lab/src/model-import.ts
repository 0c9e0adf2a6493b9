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
import { FEATURE_NAMES, FEATURE_SPEC_ID } from '@pitwall/common';
import { loadKerasModel } from './keras-archive.js';
import { ModelImportError } from './keras-model.js';
import {
  describeWindowProblem,
  formatOf,
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
  now?: () => number;
}

export interface ImportResult {
  dir: string;
  metadata: ModelMetadata;
}

/** Fields without a sensible default: what the model was trained on and where it alerts. */
const REQUIRED = ['features', 'normalization.mean', 'normalization.std', 'threshold'] as const;

function fieldAt(obj: Record<string, unknown>, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
}

/**
 * The user's metadata with defaults filled in: name and version from the command line,
 * featureSpec, window (the 10 s / 1 Hz windows the features are computed over), groups,
 * createdAt, a description, and placeholders for training provenance the importer cannot know.
 * Throws ModelImportError listing every missing required field.
 */
export function completeMetadata(raw: unknown, o: { name: string; version: string; importedFrom: ImportedFrom; source: string }): ModelMetadata {
  const where = o.source;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelImportError(where, 'the metadata must be a JSON object');
  const user = raw as Record<string, unknown>;
  const missing = REQUIRED.filter((f) => fieldAt(user, f) === undefined || fieldAt(user, f) === null);
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
    name: o.name,
    version: o.version,
    imported_from: from,
  } as unknown as ModelMetadata;
}

const quote = (p: string): string => JSON.stringify(p);

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
export function checkFeatureWidth(file: string, model: ServableModel): void {
  const n = FEATURE_NAMES.length;
  const { inputs, outputs } = signatureOf(model);
  // Other signatures (several inputs, other ranks) are refused by validateModel.
  if (inputs.length !== 1 || outputs.length !== 1 || inputs[0]!.shape?.length !== 2 || outputs[0]!.shape?.length !== 2) return;
  const [input, output] = [inputs[0]!.shape, outputs[0]!.shape];
  const fits = (w: number | null | undefined): boolean => w === n || w === null;
  if (fits(input[1]) && fits(output[1])) return;
  const shown = (shape: unknown): string => JSON.stringify(shape);
  throw new ModelImportError(
    file,
    `the model takes ${input[1] ?? 'any number of'} values per row (input ${shown(input)}) and returns ${output[1] ?? 'any number of'} (output ${shown(output)}); ` +
      `a Pitwall model takes the ${n} features of ${FEATURE_SPEC_ID} (input [null,${n}]) and returns their reconstruction (output [null,${n}]). ` +
      'This model was made for other data: retrain it on Pitwall features',
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
    checkFeatureWidth(o.file, model);
    const metadata = completeMetadata(o.metadata, { name: o.name, version: o.version, importedFrom, source: o.metadataSource ?? o.file });
    // Same checks as loadModelDir, before anything is written; errors name the target directory.
    validateMetadata(target, metadata);
    validateModel(target, model, metadata.features.length);
    await saveModelDir(tmp, model, metadata);
    const check = await loadModelDir(tmp);
    check.model.dispose();
    if (o.force) await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
    return { dir: target, metadata };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    model.dispose();
  }
}
