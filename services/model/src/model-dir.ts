/**
 * Model directories on local disk, without tfjs-node (whose `file://` handler is the only built-in
 * way to do this and cannot be installed here).
 *
 * Layout of `models/<name>/<version>/` (version: a positive integer as a string, e.g. "1"):
 *   model.json     tfjs model: { format, modelTopology, weightsManifest: [{ paths, weights }], ... }.
 *                  format "layers-model" (a Keras-style layer config) or "graph-model" (a GraphDef,
 *                  with the converter's signature and user-defined metadata); see servable.ts.
 *   weights.bin    little-endian weight data, concatenated in weightsManifest order (a converter's
 *                  output may instead name several shards; any paths inside the directory load)
 *   metadata.json  ModelMetadata (below): feature order, normalization, threshold, provenance
 *
 * The model's input is the z-scored feature vector ((x - mean) / std, per feature, in `features`
 * order) and its output is the reconstruction of that input; normalization lives in the metadata
 * rather than in the graph so the scorer can attribute error per sensor in normalized units.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeDriftProblem, FEATURE_NAMES, FEATURE_SPEC_ID, PitwallError, repoDir, type DriftReference } from '@pitwall/common';
import { describeInputProblem, resolveInput, type ModelInput } from './model-input.js';
import { formatOf, isGraphModelJSON, reconstruct, signatureOf, storedWeights, type Dim, type ServableModel } from './servable.js';

/** The repository's models/ folder. */
export function defaultModelsDir(): string {
  return repoDir(import.meta.url, 'models');
}

export interface ModelMetadata {
  name: string;
  version: string;
  description: string;
  /** Feature spec id the features follow (FEATURE_SPEC_ID). */
  featureSpec: string;
  /**
   * Feature names in input order; must equal FEATURE_NAMES. With `input` declared: absent from the
   * file, and filled in by validateMetadata with the declared names (features or sensors).
   */
  features: string[];
  normalization: {
    mean: number[];
    /** Already floored: never 0. */
    std: number[];
    /** How the floor was chosen. */
    stdFloor?: string;
  };
  /**
   * What the model takes, for models made elsewhere (model-input.ts): a subset of the window
   * features or the raw readings of named sensors, with their own scaling. Absent: the 108
   * features z-scored with `normalization`. validateMetadata fills `features` and `normalization`
   * (as the affine step (x - mean) / std) from it, so scoring has one code path.
   */
  input?: ModelInput;
  /** A window alerts when its score (MSE of the normalized reconstruction) is above this. */
  threshold: number;
  thresholdMethod: string;
  /**
   * The window the model was trained on: its length, the readings per second it expects, and how
   * many of them a window needs to be scored (model-window.ts; windowing's WINDOW_SIZES_MS must
   * include sizeMs for the model to see any window). minReadings and minCoverage are optional:
   * metadata written before them gets scoring's SCORING_MIN_COVERAGE (default 0.8).
   */
  window: { sizeMs: number; rateHz: number; minReadings?: number; minCoverage?: number };
  /**
   * The fleet profile (schemas/fleet-profiles/) the training data was converted with: "pitwall"
   * for Pitwall's own units (the simulator). Absent in metadata written before it was recorded.
   */
  fleetProfile?: string;
  /**
   * Drift reference (common drift.ts): per feature, quantile bin edges of the training windows and
   * their shares, for the PSI of live windows. Absent (older metadata, imported models): drift is
   * reported as unavailable, never as zero.
   */
  drift?: DriftReference;
  trainingData: { source: string; cars: number; seed: number; fromTs: number; toTs: number; windows: number };
  trainingMetrics: {
    finalLoss: number;
    valLoss: number;
    healthyScoreP50: number;
    healthyScoreP99: number;
    healthyScoreMax: number;
    [extra: string]: unknown;
  };
  createdAt: string;
  /** Per sensor group, what the group covers, for people reading alerts. */
  groups: Record<string, string>;
  [extra: string]: unknown;
}

export interface LoadedModel {
  model: ServableModel;
  metadata: ModelMetadata;
  dir: string;
}

/** A model directory that cannot be served. Never retriable: the files must be fixed. */
export class ModelDirError extends PitwallError {
  constructor(dir: string, message: string, cause?: unknown) {
    super('model.invalid', `model directory ${dir}: ${message}`, { retriable: false, cause, context: { dir } });
  }
}

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'metadata.json';

/** Bytes per stored value; quantized weights are stored in their quantization dtype. */
const BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function expectedBytes(specs: readonly tf.io.WeightsManifestEntry[]): number {
  let total = 0;
  for (const spec of specs) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const size = BYTES[dtype];
    if (size === undefined) throw new Error(`weight ${spec.name} has unsupported dtype ${dtype}`);
    total += spec.shape.reduce((a, b) => a * b, 1) * size;
  }
  return total;
}

/** Raises the caller's error for a problem with the model files (ModelDirError, ModelImportError). */
export type FilesError = (message: string, cause?: unknown) => Error;

/** Parses a model.json; it must at least name a topology and a weights manifest. */
export async function readModelJSON(file: string, fail: FilesError): Promise<tf.io.ModelJSON> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as tf.io.ModelJSON;
  } catch (cause) {
    throw fail(`cannot read ${path.basename(file)}: ${(cause as Error).message}`, cause);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw fail(`${path.basename(file)} is not a tfjs model (modelTopology or weightsManifest missing)`);
  }
  return json;
}

/**
 * A tfjs load handler for a parsed model.json whose weight files are relative to `base`: every
 * shard must stay inside it, and together they must hold exactly the bytes the manifest
 * describes (a truncated or padded shard is refused rather than decoded into shifted weights).
 */
export function jsonLoadHandler(base: string, json: tf.io.ModelJSON, fail: FilesError): tf.io.IOHandler {
  const root = path.resolve(base);
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: Buffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = path.resolve(root, p);
            if (path.isAbsolute(p) || path.relative(root, file).startsWith('..')) throw fail(`weight path ${p} points outside the directory ${root}`);
            try {
              buffers.push(await readFile(file));
            } catch (cause) {
              throw fail(`cannot read weight file ${p}: ${(cause as Error).message}`, cause);
            }
          }
        }
        const data = Buffer.concat(buffers);
        let want: number;
        try {
          want = expectedBytes(specs);
        } catch (cause) {
          throw fail((cause as Error).message, cause);
        }
        if (data.length !== want) throw fail(`weight files hold ${data.length} bytes, the manifest describes ${want}`);
        // A fresh ArrayBuffer: Buffer.concat may return a view into a larger shared pool.
        return [specs, data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)];
      }),
  };
}

/** Builds the model a parsed model.json describes, in its own format. Errors go through `fail`. */
export async function modelFromJSON(base: string, json: tf.io.ModelJSON, fail: FilesError): Promise<ServableModel> {
  const handler = jsonLoadHandler(base, json, fail);
  const graph = isGraphModelJSON(json);
  if (graph) {
    // tfjs-converter reads versions.producer unguarded; say what is missing instead of a TypeError.
    const versions = (json.modelTopology as { versions?: unknown }).versions;
    if (!versions || typeof versions !== 'object') throw fail('graph model topology has no "versions" (GraphDef producer version); is this converter output?');
  }
  try {
    return graph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  } catch (cause) {
    if (cause instanceof PitwallError) throw cause;
    throw fail(`cannot build the ${graph ? 'graph' : 'layers'} model: ${(cause as Error).message}`, cause);
  }
}

/** A tfjs save handler writing model.json + weights.bin (one weight group) into `dir`. */
export function dirSaveHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts) {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('binary model topologies are not supported');
      await mkdir(dir, { recursive: true });
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJSON: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJSON.trainingConfig = artifacts.trainingConfig;
      // Graph models: which tensors are the inputs and outputs, and the converter's extras.
      if (artifacts.signature) modelJSON.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.modelInitializer) modelJSON.modelInitializer = artifacts.modelInitializer;
      if (artifacts.initializerSignature) modelJSON.initializerSignature = artifacts.initializerSignature;
      await writeFile(path.join(dir, WEIGHTS_BIN), Buffer.from(weightData));
      await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJSON));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Writes a complete model directory: the model via dirSaveHandler, then metadata.json. */
export async function saveModelDir(dir: string, model: ServableModel, metadata: ModelMetadata): Promise<void> {
  await model.save(dirSaveHandler(dir));
  await writeFile(path.join(dir, METADATA_JSON), JSON.stringify(metadata, null, 2) + '\n');
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Describes how `actual` differs from `expected`, naming the first differing position and the missing/extra names. */
export function describeFeatureMismatch(actual: readonly string[], expected: readonly string[]): string | undefined {
  const problems: string[] = [];
  if (actual.length !== expected.length) problems.push(`has ${actual.length} features, expected ${expected.length}`);
  const first = expected.findIndex((name, i) => actual[i] !== name);
  if (first >= 0) problems.push(`first difference at position ${first}: "${actual[first] ?? '(none)'}" where "${expected[first]}" was expected`);
  const have = new Set(actual);
  const want = new Set(expected);
  const missing = expected.filter((n) => !have.has(n));
  const extra = actual.filter((n) => !want.has(n));
  if (missing.length) problems.push(`missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
  if (extra.length) problems.push(`unknown ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
  return problems.length ? problems.join('; ') : undefined;
}

/** Checks a parsed metadata.json against what the scorer relies on. Returns it typed, or throws ModelDirError. */
export function validateMetadata(dir: string, raw: unknown, expectedFeatures: readonly string[] = FEATURE_NAMES): ModelMetadata {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelDirError(dir, `${METADATA_JSON} is not a JSON object`);
  const m = raw as Partial<ModelMetadata>;
  if (typeof m.name !== 'string' || !m.name) throw new ModelDirError(dir, `${METADATA_JSON}: name missing`);
  if (typeof m.version !== 'string' || !m.version) throw new ModelDirError(dir, `${METADATA_JSON}: version missing (a string such as "1")`);
  if (m.featureSpec !== FEATURE_SPEC_ID) {
    throw new ModelDirError(dir, `${METADATA_JSON}: featureSpec is ${JSON.stringify(m.featureSpec)}, this scorer computes ${FEATURE_SPEC_ID}`);
  }
  if (m.input !== undefined) return validateDeclaredInput(dir, m);
  if (!Array.isArray(m.features) || !m.features.every((f) => typeof f === 'string')) {
    throw new ModelDirError(dir, `${METADATA_JSON}: features must be an array of feature names`);
  }
  const mismatch = describeFeatureMismatch(m.features, expectedFeatures);
  if (mismatch) throw new ModelDirError(dir, `${METADATA_JSON}: features do not match ${FEATURE_SPEC_ID}: ${mismatch}`);
  const n = m.features.length;
  const norm = m.normalization;
  if (!norm || !Array.isArray(norm.mean) || !Array.isArray(norm.std)) {
    throw new ModelDirError(dir, `${METADATA_JSON}: normalization.mean and normalization.std are required`);
  }
  if (norm.mean.length !== n || norm.std.length !== n) {
    throw new ModelDirError(dir, `${METADATA_JSON}: normalization has ${norm.mean.length} means and ${norm.std.length} stds for ${n} features`);
  }
  const badMean = norm.mean.findIndex((v) => !isFiniteNumber(v));
  if (badMean >= 0) throw new ModelDirError(dir, `${METADATA_JSON}: normalization.mean of ${m.features[badMean]} is not a finite number`);
  const badStd = norm.std.findIndex((v) => !isFiniteNumber(v) || v <= 0);
  if (badStd >= 0) throw new ModelDirError(dir, `${METADATA_JSON}: normalization.std of ${m.features[badStd]} must be a positive number`);
  validateCommon(dir, m);
  checkDrift(dir, m, n);
  return m as ModelMetadata;
}

/** A drift reference, when present, must have one entry per input name (drift.ts in common). */
function checkDrift(dir: string, m: Partial<ModelMetadata>, width: number): void {
  const problem = m.drift === undefined ? undefined : describeDriftProblem(m.drift, width);
  if (problem) throw new ModelDirError(dir, `${METADATA_JSON}: ${problem}`);
}

function validateCommon(dir: string, m: Partial<ModelMetadata>): void {
  if (!isFiniteNumber(m.threshold) || m.threshold <= 0) throw new ModelDirError(dir, `${METADATA_JSON}: threshold must be a positive number`);
  const windowProblem = describeWindowProblem(m.window);
  if (windowProblem) throw new ModelDirError(dir, `${METADATA_JSON}: ${windowProblem}`);
  if (m.fleetProfile !== undefined && (typeof m.fleetProfile !== 'string' || m.fleetProfile === '')) {
    throw new ModelDirError(dir, `${METADATA_JSON}: fleetProfile must be a fleet profile name`);
  }
}

/**
 * Metadata declaring its `input`: checked (model-input.ts), and returned as a copy whose `features`
 * are the declared names and whose `normalization` is the declared scaling as (x - mean) / std.
 */
function validateDeclaredInput(dir: string, m: Partial<ModelMetadata>): ModelMetadata {
  const problem = describeInputProblem(m.input, { served: true });
  if (problem) throw new ModelDirError(dir, `${METADATA_JSON}: ${problem}`);
  for (const key of ['features', 'normalization'] as const) {
    if (m[key] !== undefined) throw new ModelDirError(dir, `${METADATA_JSON}: ${key} and input both given; a model declaring its input takes names and scaling from input only`);
  }
  validateCommon(dir, m);
  const r = resolveInput(m.input!);
  checkDrift(dir, m, r.names.length);
  return { ...(m as ModelMetadata), features: r.names, normalization: { mean: r.offset, std: r.divisor, stdFloor: `input.scaling (${m.input!.scaling.method})` } };
}

/** What is wrong with a metadata `window`, or undefined. */
export function describeWindowProblem(raw: unknown): string | undefined {
  const w = raw as Partial<ModelMetadata['window']> | null | undefined;
  const shape = 'window must be {"sizeMs": positive integer, "rateHz": positive number, "minReadings"?: positive integer, "minCoverage"?: number in (0, 1]}';
  if (!w || typeof w !== 'object' || Array.isArray(w)) return shape;
  if (!isFiniteNumber(w.sizeMs) || !Number.isInteger(w.sizeMs) || w.sizeMs <= 0) return `${shape}; sizeMs is ${JSON.stringify(w.sizeMs)}`;
  if (!isFiniteNumber(w.rateHz) || w.rateHz <= 0) return `${shape}; rateHz is ${JSON.stringify(w.rateHz)}`;
  if (w.minReadings !== undefined && (!isFiniteNumber(w.minReadings) || !Number.isInteger(w.minReadings) || w.minReadings < 1)) {
    return `${shape}; minReadings is ${JSON.stringify(w.minReadings)}`;
  }
  if (w.minCoverage !== undefined && (!isFiniteNumber(w.minCoverage) || w.minCoverage <= 0 || w.minCoverage > 1)) {
    return `${shape}; minCoverage is ${JSON.stringify(w.minCoverage)}`;
  }
  return undefined;
}

/** What a metadata's inputs are called in errors: "features", "declared window features" or "declared sensor readings". */
export function inputLabel(meta: Pick<ModelMetadata, 'input'>): string {
  return meta.input === undefined ? 'features' : meta.input.kind === 'window' ? 'declared window features' : 'declared sensor readings';
}

const showShape = (shape: readonly Dim[] | undefined): string => (shape ? JSON.stringify(shape) : 'undeclared');

/**
 * Throws unless the model has one float32 input and one output, maps [batch, n] to [batch, n]
 * (declared shapes where the model declares them, and a probe prediction on a zero batch in any
 * case, which is also where a graph that needs executeAsync is refused), and every stored weight
 * is finite.
 */
export function validateModel(dir: string, model: ServableModel, n: number, what = 'features'): void {
  const { inputs, outputs } = signatureOf(model);
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new ModelDirError(dir, `expected one input and one output, the model has ${inputs.length} and ${outputs.length}`);
  }
  const input = inputs[0]!;
  const output = outputs[0]!;
  if (input.dtype !== undefined && input.dtype !== 'float32') throw new ModelDirError(dir, `model input ${input.name} is ${input.dtype}, the features are float32`);
  const fits = (shape: Dim[] | undefined): boolean => shape === undefined || (shape.length === 2 && (shape[1] === n || shape[1] === null));
  if (!fits(input.shape)) {
    throw new ModelDirError(dir, `model input shape is ${showShape(input.shape)}, the metadata lists ${n} ${what} (expected [null,${n}])`);
  }
  if (!fits(output.shape)) {
    throw new ModelDirError(dir, `model output shape is ${showShape(output.shape)}, a reconstruction of ${n} ${what} is expected`);
  }
  for (const { name, tensor } of storedWeights(model)) {
    if (tensor.dtype !== 'float32') continue;
    const values = tensor.dataSync();
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw new ModelDirError(dir, `weight ${name} holds a non-finite value (${values[i]}) at index ${i}`);
    }
  }
  let probed: number[];
  try {
    probed = tf.tidy(() => reconstruct(model, tf.zeros([2, n])).shape);
  } catch (cause) {
    throw new ModelDirError(dir, `the ${formatOf(model)} cannot predict a [2,${n}] batch: ${(cause as Error).message}`, cause);
  }
  if (probed.length !== 2 || probed[0] !== 2 || probed[1] !== n) {
    throw new ModelDirError(dir, `the model maps a [2,${n}] batch to ${JSON.stringify(probed)}, a reconstruction of the same shape is expected`);
  }
}

/** Loads and validates a model directory. The caller owns the model (dispose it when done). */
export async function loadModelDir(dir: string, opts: { expectedFeatures?: readonly string[] } = {}): Promise<LoadedModel> {
  let rawMeta: string;
  try {
    rawMeta = await readFile(path.join(dir, METADATA_JSON), 'utf8');
  } catch (cause) {
    throw new ModelDirError(dir, `${METADATA_JSON} is missing or unreadable: ${(cause as Error).message}`, cause);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawMeta);
  } catch (cause) {
    throw new ModelDirError(dir, `${METADATA_JSON} is not valid JSON: ${(cause as Error).message}`, cause);
  }
  const metadata = validateMetadata(dir, parsed, opts.expectedFeatures);
  const fail: FilesError = (message, cause) => new ModelDirError(dir, message, cause);
  const model = await modelFromJSON(dir, await readModelJSON(path.join(dir, MODEL_JSON), fail), fail);
  try {
    validateModel(dir, model, metadata.features.length, inputLabel(metadata));
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, metadata, dir };
}

/**
 * The directory of `name` at `version`; 'latest' is the highest numeric version directory
 * (numeric order: 10 is after 9).
 */
export async function resolveVersion(modelsDir: string, name: string, version: string): Promise<{ version: string; dir: string }> {
  const base = path.join(modelsDir, name);
  if (version !== 'latest') {
    if (!/^[0-9]+$/.test(version)) throw new ModelDirError(base, `version must be a number or "latest", got "${version}"`);
    const dir = path.join(base, version);
    const s = await stat(dir).catch(() => undefined);
    if (!s?.isDirectory()) throw new ModelDirError(dir, `model ${name} has no version ${version}`);
    return { version, dir };
  }
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch (cause) {
    throw new ModelDirError(base, `no model named ${name} under ${modelsDir}: ${(cause as Error).message}`, cause);
  }
  const versions = entries
    .filter((e) => e.isDirectory() && /^[0-9]+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b));
  const latest = versions.at(-1);
  if (latest === undefined) throw new ModelDirError(base, `model ${name} has no numeric version directories`);
  return { version: latest, dir: path.join(base, latest) };
}
