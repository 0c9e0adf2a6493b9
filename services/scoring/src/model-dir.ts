/**
 * Model directories on local disk, without tfjs-node (whose `file://` handler is the only built-in
 * way to do this and cannot be installed here).
 *
 * Layout of `models/<name>/<version>/` (version: a positive integer as a string, e.g. "1"):
 *   model.json     tfjs layers format: { modelTopology, weightsManifest: [{ paths, weights }], format, ... }
 *   weights.bin    little-endian weight data, concatenated in weightsManifest order
 *   metadata.json  ModelMetadata (below): feature order, normalization, threshold, provenance
 *
 * The model's input is the z-scored feature vector ((x - mean) / std, per feature, in `features`
 * order) and its output is the reconstruction of that input; normalization lives in the metadata
 * rather than in the graph so the scorer can attribute error per sensor in normalized units.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_NAMES, FEATURE_SPEC_ID, PitwallError } from '@pitwall/common';

export interface ModelMetadata {
  name: string;
  version: string;
  description: string;
  /** Feature spec id the features follow (FEATURE_SPEC_ID). */
  featureSpec: string;
  /** Feature names in input order; must equal FEATURE_NAMES. */
  features: string[];
  normalization: {
    mean: number[];
    /** Already floored: never 0. */
    std: number[];
    /** How the floor was chosen. */
    stdFloor?: string;
  };
  /** A window alerts when its score (MSE of the normalized reconstruction) is above this. */
  threshold: number;
  thresholdMethod: string;
  window: { sizeMs: number; rateHz: number };
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
  model: tf.LayersModel;
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

/**
 * A tfjs load handler reading model.json and the weight files it names from `dir`. Weight paths
 * must stay inside the directory.
 */
export function dirLoadHandler(dir: string): tf.io.IOHandler {
  return {
    async load() {
      const modelPath = path.join(dir, MODEL_JSON);
      let modelJSON: tf.io.ModelJSON;
      try {
        modelJSON = JSON.parse(await readFile(modelPath, 'utf8')) as tf.io.ModelJSON;
      } catch (cause) {
        throw new ModelDirError(dir, `cannot read ${MODEL_JSON}: ${(cause as Error).message}`, cause);
      }
      if (!modelJSON || typeof modelJSON !== 'object' || !modelJSON.modelTopology || !Array.isArray(modelJSON.weightsManifest)) {
        throw new ModelDirError(dir, `${MODEL_JSON} is not a tfjs layers model (modelTopology or weightsManifest missing)`);
      }
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: Buffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = path.resolve(dir, p);
            if (path.relative(path.resolve(dir), file).startsWith('..') || path.isAbsolute(p)) {
              throw new ModelDirError(dir, `weight path ${p} points outside the directory`);
            }
            try {
              buffers.push(await readFile(file));
            } catch (cause) {
              throw new ModelDirError(dir, `cannot read weight file ${p}: ${(cause as Error).message}`, cause);
            }
          }
        }
        const data = Buffer.concat(buffers);
        const want = expectedBytes(specs);
        if (data.length !== want) {
          throw new ModelDirError(dir, `weight files hold ${data.length} bytes, the manifest describes ${want}`);
        }
        // A fresh ArrayBuffer: Buffer.concat may return a view into a larger shared pool.
        const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
        return [specs, weightData];
      });
    },
  };
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
      await writeFile(path.join(dir, WEIGHTS_BIN), Buffer.from(weightData));
      await writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJSON));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Writes a complete model directory: the model via dirSaveHandler, then metadata.json. */
export async function saveModelDir(dir: string, model: tf.LayersModel, metadata: ModelMetadata): Promise<void> {
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
  if (!isFiniteNumber(m.threshold) || m.threshold <= 0) throw new ModelDirError(dir, `${METADATA_JSON}: threshold must be a positive number`);
  return m as ModelMetadata;
}

/** Throws unless the model maps [batch, n] to [batch, n] and every weight is finite. */
export function validateModel(dir: string, model: tf.LayersModel, n: number): void {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new ModelDirError(dir, `expected one input and one output, the model has ${model.inputs.length} and ${model.outputs.length}`);
  }
  const inShape = model.inputs[0]!.shape;
  const outShape = model.outputs[0]!.shape;
  if (inShape.length !== 2 || inShape[1] !== n) {
    throw new ModelDirError(dir, `model input shape is ${JSON.stringify(inShape)}, the metadata lists ${n} features (expected [null,${n}])`);
  }
  if (outShape.length !== 2 || outShape[1] !== n) {
    throw new ModelDirError(dir, `model output shape is ${JSON.stringify(outShape)}, a reconstruction of ${n} features is expected`);
  }
  for (const w of model.weights) {
    const values = w.read().dataSync();
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw new ModelDirError(dir, `weight ${w.originalName} holds a non-finite value (${values[i]}) at index ${i}`);
    }
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
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(dirLoadHandler(dir));
  } catch (cause) {
    if (cause instanceof ModelDirError) throw cause;
    throw new ModelDirError(dir, `cannot build the model from ${MODEL_JSON}: ${(cause as Error).message}`, cause);
  }
  try {
    validateModel(dir, model, metadata.features.length);
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
