/**
 * Reading a Keras 2 whole-model HDF5 file (`model.save('model.h5')`) into a tfjs LayersModel,
 * without Python: h5wasm reads the file, the topology is rebuilt layer by layer from the Keras
 * config, and the weights are assigned by layer name.
 *
 * Layout written by Keras 2 (keras/saving/legacy/hdf5_format.py, save_model_to_hdf5):
 *   /                      attrs: model_config (JSON string: {class_name, config}), keras_version,
 *                                 backend, training_config (optional, ignored here)
 *   /model_weights         attrs: layer_names (string array, in model.layers order), keras_version, backend
 *                          An attribute too large for one HDF5 object header is split into
 *                          layer_names0, layer_names1, ... (the same holds for weight_names).
 *   /model_weights/<layer> attrs: weight_names (e.g. "dense/kernel:0", "dense/bias:0"); every name is
 *                          the path of a dataset relative to this group (so "dense/kernel:0" is the
 *                          dataset kernel:0 in the subgroup dense). Layers without weights have an
 *                          empty weight_names.
 *   /model_weights/top_level_model_weights  weights owned by the model itself (normally none)
 *   /optimizer_weights     optimizer state, ignored
 * Order of a layer's weights: trainable then non-trainable, i.e. Dense kernel [in, out], bias [out];
 * BatchNormalization gamma, beta, moving_mean, moving_variance (gamma/beta absent when scale/center
 * is false). Here each weight is matched by its role (the name after the last "/", without ":0"),
 * which gives the same result and names what is missing when a file is incomplete.
 *
 * Supported layers: InputLayer, Dense, Dropout, BatchNormalization, Activation, LeakyReLU, Add,
 * Concatenate, in Sequential models and functional models (each layer called once, one input and
 * one output of rank 2). Anything else is refused with the layer's name and class.
 */
import { open, stat } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import h5wasm, { type Dataset, type Group } from 'h5wasm/node';
import { PitwallError } from '@pitwall/common';

/** The file cannot be imported as it is. Never retriable: the file or its config must change. */
export class ModelImportError extends PitwallError {
  constructor(file: string, message: string, cause?: unknown) {
    super('model.import', `${file}: ${message}`, { retriable: false, cause, context: { file } });
  }
}

/** Keras activation names -> tfjs ones (identical formulas; Keras defaults, e.g. elu alpha 1). */
const ACTIVATIONS: Readonly<Record<string, string>> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  sigmoid: 'sigmoid',
  hard_sigmoid: 'hardSigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  softplus: 'softplus',
  softsign: 'softsign',
  swish: 'swish',
};

export const SUPPORTED_LAYERS = ['InputLayer', 'Dense', 'Dropout', 'BatchNormalization', 'Activation', 'LeakyReLU', 'Add', 'Concatenate'] as const;

/** One layer entry of a Keras model config. */
interface KerasLayerConfig {
  class_name: string;
  config: Record<string, unknown>;
  name?: string;
  inbound_nodes?: unknown;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function layerName(l: KerasLayerConfig): string {
  const n = l.config.name ?? l.name;
  return typeof n === 'string' ? n : '(unnamed)';
}

function activationOf(file: string, l: KerasLayerConfig, raw: unknown): string {
  // Keras 2 serializes activations as their name; a dict means a custom or Keras 3 object.
  const name = raw === undefined || raw === null ? 'linear' : raw;
  if (typeof name !== 'string' || ACTIVATIONS[name] === undefined) {
    throw new ModelImportError(file, `layer ${layerName(l)} (${l.class_name}): activation ${JSON.stringify(name)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  }
  return ACTIVATIONS[name];
}

/** batch_input_shape (Keras 2) or batch_shape (Keras 3) of an input, as the width of a [batch, width] input. */
function inputWidth(file: string, l: KerasLayerConfig): number | undefined {
  const shape = l.config.batch_input_shape ?? l.config.batch_shape;
  if (shape === undefined || shape === null) return undefined;
  if (!Array.isArray(shape) || shape.length !== 2 || typeof shape[1] !== 'number' || !(shape[1] > 0)) {
    throw new ModelImportError(file, `layer ${layerName(l)}: input shape ${JSON.stringify(shape)} is not supported (expected [null, width])`);
  }
  return shape[1];
}

/** A tfjs layer equivalent to a Keras layer config; InputLayer is handled by the callers. */
function buildLayer(file: string, l: KerasLayerConfig): tf.layers.Layer {
  const c = l.config;
  const name = layerName(l);
  switch (l.class_name) {
    case 'Dense':
      if (typeof c.units !== 'number' || !Number.isInteger(c.units) || c.units <= 0) {
        throw new ModelImportError(file, `layer ${name} (Dense): units ${JSON.stringify(c.units)} is not a positive integer`);
      }
      return tf.layers.dense({
        name,
        units: c.units,
        activation: activationOf(file, l, c.activation) as never,
        useBias: c.use_bias !== false,
      });
    case 'Dropout':
      // Identity at inference; kept so the layer list matches the source model.
      return tf.layers.dropout({ name, rate: typeof c.rate === 'number' ? c.rate : 0 });
    case 'Activation':
      return tf.layers.activation({ name, activation: activationOf(file, l, c.activation) as never });
    case 'LeakyReLU': {
      // Keras 2 calls the slope alpha (default 0.3), Keras 3 negative_slope.
      const alpha = c.alpha ?? c.negative_slope ?? 0.3;
      if (typeof alpha !== 'number') throw new ModelImportError(file, `layer ${name} (LeakyReLU): alpha ${JSON.stringify(alpha)} is not a number`);
      return tf.layers.leakyReLU({ name, alpha });
    }
    case 'BatchNormalization': {
      const axis: unknown = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : (c.axis ?? -1);
      // On [batch, features] inputs the feature axis is 1, also spelled -1.
      if (axis !== -1 && axis !== 1) {
        throw new ModelImportError(file, `layer ${name} (BatchNormalization): axis ${JSON.stringify(c.axis)} is not supported (only the feature axis, -1)`);
      }
      if (c.renorm === true) throw new ModelImportError(file, `layer ${name} (BatchNormalization): renorm is not supported`);
      return tf.layers.batchNormalization({
        name,
        axis: -1,
        epsilon: typeof c.epsilon === 'number' ? c.epsilon : 1e-3,
        momentum: typeof c.momentum === 'number' ? c.momentum : 0.99,
        center: c.center !== false,
        scale: c.scale !== false,
      });
    }
    case 'Add':
      return tf.layers.add({ name });
    case 'Concatenate': {
      const axis = c.axis ?? -1;
      if (axis !== -1 && axis !== 1) throw new ModelImportError(file, `layer ${name} (Concatenate): axis ${JSON.stringify(axis)} is not supported (only -1)`);
      return tf.layers.concatenate({ name, axis: -1 });
    }
    default:
      throw new ModelImportError(
        file,
        `layer ${name} has unsupported type ${l.class_name}${['Sequential', 'Functional', 'Model'].includes(l.class_name) ? ' (nested models: flatten the model before saving)' : ''} (supported: ${SUPPORTED_LAYERS.join(', ')})`,
      );
  }
}

function parseLayers(file: string, raw: unknown): KerasLayerConfig[] {
  if (!Array.isArray(raw)) throw new ModelImportError(file, 'model_config has no layer list');
  return raw.map((l, i) => {
    if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) {
      throw new ModelImportError(file, `model_config layer #${i} is not a {class_name, config} object`);
    }
    return l as unknown as KerasLayerConfig;
  });
}

function buildSequential(file: string, modelName: string, layers: KerasLayerConfig[]): tf.LayersModel {
  const [first, ...rest] = layers;
  if (!first) throw new ModelImportError(file, 'the Sequential model has no layers');
  // TF 2.x lists an explicit InputLayer first; older files put batch_input_shape on the first layer.
  const width = inputWidth(file, first);
  if (width === undefined) throw new ModelImportError(file, `the model has no input shape (layer ${layerName(first)} has no batch_input_shape); the model must be built before saving`);
  const body = first.class_name === 'InputLayer' ? rest : layers;
  const input = tf.input({ shape: [width], name: first.class_name === 'InputLayer' ? layerName(first) : `${modelName}_input` });
  let x: tf.SymbolicTensor = input;
  for (const l of body) {
    if (l.class_name === 'InputLayer') throw new ModelImportError(file, `layer ${layerName(l)}: an InputLayer in the middle of a Sequential model is not supported`);
    x = buildLayer(file, l).apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name: modelName });
}

/** [name, node_index, tensor_index, kwargs?] -> name, refusing references to a second call or output. */
function tensorRef(file: string, ref: unknown, where: string): string {
  if (!Array.isArray(ref) || typeof ref[0] !== 'string') {
    throw new ModelImportError(file, `${where}: connection ${JSON.stringify(ref)} is not in the Keras 2 [layer, node, tensor] format`);
  }
  if ((ref[1] ?? 0) !== 0 || (ref[2] ?? 0) !== 0) {
    throw new ModelImportError(file, `${where}: connection ${JSON.stringify(ref)} uses a shared layer or a second output, which is not supported`);
  }
  return ref[0];
}

/** input_layers / output_layers: [[name, 0, 0], ...] or, for a single tensor, [name, 0, 0]. */
function endpointNames(file: string, raw: unknown, what: string): string[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new ModelImportError(file, `model_config has no ${what}`);
  const refs = typeof raw[0] === 'string' ? [raw] : raw;
  return refs.map((r) => tensorRef(file, r, what));
}

function buildFunctional(file: string, modelName: string, cfg: Json): tf.LayersModel {
  const layers = parseLayers(file, cfg.layers);
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  const inputs = endpointNames(file, cfg.input_layers, 'input_layers');
  const outputs = endpointNames(file, cfg.output_layers, 'output_layers');
  if (inputs.length !== 1 || outputs.length !== 1) {
    throw new ModelImportError(file, `the model has ${inputs.length} inputs and ${outputs.length} outputs; exactly one of each is supported`);
  }
  const built = new Map<string, tf.SymbolicTensor>();
  const visiting = new Set<string>();
  const tensorOf = (name: string): tf.SymbolicTensor => {
    const done = built.get(name);
    if (done) return done;
    const l = byName.get(name);
    if (!l) throw new ModelImportError(file, `model_config refers to layer ${name}, which it does not define`);
    if (visiting.has(name)) throw new ModelImportError(file, `layer ${name} is part of a cycle`);
    visiting.add(name);
    let out: tf.SymbolicTensor;
    if (l.class_name === 'InputLayer') {
      const width = inputWidth(file, l);
      if (width === undefined) throw new ModelImportError(file, `input layer ${name} has no batch_input_shape`);
      out = tf.input({ shape: [width], name });
    } else {
      // tf.keras of TensorFlow 1.x (keras_version "2.2.4-tf") writes a single-input call one level
      // flatter: [[name, 0, 0, {}]] instead of [[[name, 0, 0, {}]]]. A node that is itself a
      // connection is read as a call with that one input.
      const nodes = Array.isArray(l.inbound_nodes) ? l.inbound_nodes.map((n: unknown) => (Array.isArray(n) && typeof n[0] === 'string' ? [n] : n)) : l.inbound_nodes;
      if (!Array.isArray(nodes) || nodes.length !== 1 || !Array.isArray(nodes[0])) {
        throw new ModelImportError(
          file,
          `layer ${name} must be called exactly once in the Keras 2 format (inbound_nodes ${JSON.stringify(nodes)?.slice(0, 120)}); shared layers and Keras 3 configs are not supported`,
        );
      }
      const args = (nodes[0] as unknown[]).map((ref) => tensorOf(tensorRef(file, ref, `layer ${name}`)));
      const layer = buildLayer(file, l);
      out = layer.apply(args.length === 1 ? args[0]! : args) as tf.SymbolicTensor;
    }
    visiting.delete(name);
    built.set(name, out);
    return out;
  };
  const output = tensorOf(outputs[0]!);
  const input = built.get(inputs[0]!);
  if (!input) throw new ModelImportError(file, `the output ${outputs[0]} does not depend on the input ${inputs[0]}`);
  const unused = layers.map(layerName).filter((n) => !built.has(n));
  if (unused.length) throw new ModelImportError(file, `layers ${unused.join(', ')} are not on the path from input to output`);
  return tf.model({ inputs: input, outputs: output, name: modelName });
}

/**
 * A tfjs model with the topology of a Keras 2 model config (`{class_name, config}`, as stored in the
 * model_config attribute or returned by model.to_json()); its weights are freshly initialised.
 */
export function modelFromKerasConfig(file: string, modelConfig: unknown): tf.LayersModel {
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string') {
    throw new ModelImportError(file, 'model_config is not a {class_name, config} object');
  }
  const kind = modelConfig.class_name;
  const cfg = modelConfig.config;
  const nameOf = (c: unknown): string => (isObject(c) && typeof c.name === 'string' ? c.name : 'imported');
  if (kind === 'Sequential') {
    // Keras <= 2.2.4 stored the layer list itself as the config.
    const layers = parseLayers(file, Array.isArray(cfg) ? cfg : isObject(cfg) ? cfg.layers : undefined);
    return buildSequential(file, nameOf(cfg), layers);
  }
  if (kind === 'Functional' || kind === 'Model') {
    if (!isObject(cfg)) throw new ModelImportError(file, `model_config of the ${kind} model has no config object`);
    return buildFunctional(file, nameOf(cfg), cfg);
  }
  throw new ModelImportError(file, `model class ${kind} is not supported (Sequential or functional models only)`);
}

/** A string attribute; h5py writes them fixed-length (NUL padded) or variable-length, both handled. */
function attrText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.replace(/\0+$/, '');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8').replace(/\0+$/, '');
  return undefined;
}

/** A string-list attribute, joining the `<name>0`, `<name>1`, ... chunks Keras writes for long lists. */
function attrList(group: Group, name: string): string[] | undefined {
  const attrs = group.attrs;
  const one = (key: string): string[] => {
    const v = attrs[key]!.value;
    // h5py stores an empty list as an empty float64 array.
    const items: unknown[] = Array.isArray(v) ? v : ArrayBuffer.isView(v) && !(v instanceof Uint8Array) ? Array.from(v as unknown as ArrayLike<unknown>) : [v];
    return items.map((x) => attrText(x) ?? String(x));
  };
  if (name in attrs) return one(name);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...one(`${name}${i}`));
  return out;
}

/** The role of a weight: "dense_1/kernel:0" -> "kernel", tfjs "dense_1/kernel" -> "kernel". */
export function weightRole(name: string): string {
  return (name.split('/').at(-1) ?? name).replace(/:\d+$/, '');
}

interface StoredWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

function readWeights(file: string, root: Group, layer: string): StoredWeight[] | undefined {
  const group = root.get(layer);
  if (!(group instanceof h5wasm.Group)) return undefined;
  const names = attrList(group, 'weight_names') ?? [];
  return names.map((wn) => {
    const ds = group.get(wn);
    if (!(ds instanceof h5wasm.Dataset)) throw new ModelImportError(file, `layer ${layer}: weight ${wn} is listed in weight_names but its dataset is missing`);
    const d: Dataset = ds;
    const value = d.value;
    if (!ArrayBuffer.isView(value) || value instanceof BigInt64Array || value instanceof BigUint64Array) {
      throw new ModelImportError(file, `layer ${layer}: weight ${wn} is not a numeric array`);
    }
    return { name: wn, shape: d.shape ?? [], values: Float32Array.from(value as unknown as ArrayLike<number>) };
  });
}

/** Assigns the stored weights to every layer of `model` that has weights, matching layers by name and weights by role. */
function assignWeights(file: string, model: tf.LayersModel, weightsRoot: Group): void {
  const stored = new Set((attrList(weightsRoot, 'layer_names') ?? []).filter((n) => (readWeights(file, weightsRoot, n)?.length ?? 0) > 0));
  for (const layer of model.layers) {
    const wanted = layer.weights;
    if (wanted.length === 0) continue;
    const have = readWeights(file, weightsRoot, layer.name);
    const roles = wanted.map((w) => weightRole(w.originalName));
    if (!have || have.length === 0) {
      throw new ModelImportError(file, `layer ${layer.name}: no weights in model_weights (expected ${roles.join(', ')})`);
    }
    const values = wanted.map((w, i) => {
      const role = roles[i]!;
      const match = have.filter((h) => weightRole(h.name) === role);
      if (match.length !== 1) {
        throw new ModelImportError(file, `layer ${layer.name}: weight ${role} ${match.length ? 'appears twice' : 'is missing'} (stored: ${have.map((h) => h.name).join(', ')})`);
      }
      const h = match[0]!;
      if (h.shape.length !== w.shape.length || h.shape.some((s, k) => s !== w.shape[k])) {
        throw new ModelImportError(file, `layer ${layer.name}: weight ${h.name} has shape [${h.shape.join(',')}], the layer needs [${w.shape.join(',')}]`);
      }
      return tf.tensor(h.values, w.shape as number[], 'float32');
    });
    const extra = have.filter((h) => !roles.includes(weightRole(h.name)));
    if (extra.length) {
      values.forEach((t) => t.dispose());
      throw new ModelImportError(file, `layer ${layer.name}: stored weights ${extra.map((h) => h.name).join(', ')} have no counterpart in the layer`);
    }
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
    stored.delete(layer.name);
  }
  if (stored.size) throw new ModelImportError(file, `model_weights holds weights for layers not in model_config: ${[...stored].join(', ')}`);
  const top = readWeights(file, weightsRoot, 'top_level_model_weights');
  if (top && top.length) throw new ModelImportError(file, `top-level model weights (${top.map((t) => t.name).join(', ')}) are not supported`);
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The HDF5 superblock signature sits at byte 0, or at 512, 1024, 2048, ... after a user block. */
async function hasHdf5Signature(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(HDF5_SIGNATURE.length);
    for (let at = 0; at + buf.length <= size; at = at === 0 ? 512 : at * 2) {
      await fh.read(buf, 0, buf.length, at);
      if (buf.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

export interface KerasH5Model {
  model: tf.LayersModel;
  kerasVersion: string | undefined;
  backend: string | undefined;
}

/** Reads a Keras 2 whole-model .h5 into a tfjs model with its weights. The caller owns the model. */
export async function loadKerasH5(file: string): Promise<KerasH5Model> {
  const s = await stat(file).catch((cause: Error) => {
    throw new ModelImportError(file, `cannot read the file: ${cause.message}`, cause);
  });
  if (!s.isFile()) throw new ModelImportError(file, 'not a file');
  // h5wasm does not reject a non-HDF5 file on open (it fails later, with C-level noise on stderr).
  if (!(await hasHdf5Signature(file))) throw new ModelImportError(file, 'not a readable HDF5 file (no HDF5 signature)');
  await h5wasm.ready;
  let h5: InstanceType<typeof h5wasm.File>;
  try {
    h5 = new h5wasm.File(file, 'r');
  } catch (cause) {
    throw new ModelImportError(file, `not a readable HDF5 file (${String((cause as Error)?.message ?? cause)})`, cause);
  }
  try {
    const rawConfig = h5.attrs.model_config ? attrText(h5.attrs.model_config.value) : undefined;
    if (rawConfig === undefined) {
      throw new ModelImportError(file, 'no model_config attribute: not a whole-model Keras file (a save_weights() file holds weights only; use model.save("model.h5"))');
    }
    let modelConfig: unknown;
    try {
      modelConfig = JSON.parse(rawConfig);
    } catch (cause) {
      throw new ModelImportError(file, `model_config is not valid JSON: ${(cause as Error).message}`, cause);
    }
    const kerasVersion = h5.attrs.keras_version ? attrText(h5.attrs.keras_version.value) : undefined;
    const backend = h5.attrs.backend ? attrText(h5.attrs.backend.value) : undefined;
    if (kerasVersion !== undefined && !kerasVersion.startsWith('2.')) {
      // Keras 1 stored kernels in other layouts and Keras 3 writes a different config format.
      throw new ModelImportError(file, `keras_version is ${kerasVersion}; only files written by Keras 2.x are supported`);
    }
    const weights = h5.get('model_weights');
    if (!(weights instanceof h5wasm.Group)) throw new ModelImportError(file, 'no model_weights group');
    const model = modelFromKerasConfig(file, modelConfig);
    try {
      assignWeights(file, model, weights);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return { model, kerasVersion, backend };
  } finally {
    h5.close();
  }
}
