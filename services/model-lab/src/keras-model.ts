/**
 * The part of Keras import shared by every file format (keras-h5.ts: whole-model HDF5 of Keras 2
 * and 3; keras-archive.ts: the .keras zip of Keras 2.12+ and 3): a tfjs LayersModel rebuilt layer
 * by layer from a Keras model config, and the assignment of stored weights by layer name and role.
 *
 * A functional model's config says which tensors feed each layer (`inbound_nodes`). Three layouts
 * are read, each a list with one entry per call of the layer:
 *   Keras 2 (standalone, tf.keras, tf_keras)
 *       [[[name, node_index, tensor_index, kwargs], ...]]    a call is the list of its inputs
 *   tf.keras 2.2.4-tf (TensorFlow 1.x; e.g. models/autoencoder_sensor_anomaly_detection.h5 of the
 *   hivemq-mqtt-tensorflow-kafka demo)
 *       [[name, node_index, tensor_index, kwargs]]           a single-input call one level flatter;
 *                                                            input_layers/output_layers likewise
 *   Keras 3
 *       [{"args": [tensor or [tensor, ...]], "kwargs": {...}}], a tensor being
 *       {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node_index, tensor_index]}}
 *
 * Supported layers: InputLayer, Dense, Dropout, BatchNormalization, Activation, LeakyReLU, Add,
 * Concatenate, in Sequential models and functional models (each layer called once, one input and
 * one output of rank 2). Anything else is refused with the layer's name and class.
 */
import * as tf from '@tensorflow/tfjs';
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
export interface KerasLayerConfig {
  class_name: string;
  config: Record<string, unknown>;
  name?: string;
  inbound_nodes?: unknown;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function layerName(l: KerasLayerConfig): string {
  const n = l.config.name ?? l.name;
  return typeof n === 'string' ? n : '(unnamed)';
}

function activationOf(file: string, l: KerasLayerConfig, raw: unknown): string {
  // Keras serializes built-in activations by name; a dict is a custom (or unknown) object.
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
    throw new ModelImportError(file, `${where}: connection ${JSON.stringify(ref)?.slice(0, 160)} is not a [layer, node, tensor] reference`);
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

/** The Keras 3 tensors in a call's args, in order (a merge layer takes them as one list argument). */
function kerasTensors(v: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) v.forEach((x) => kerasTensors(x, out));
  else if (isObject(v) && v.class_name === '__keras_tensor__') out.push(isObject(v.config) ? v.config.keras_history : v);
  return out;
}

/** The names of the layers feeding `name`, from its inbound_nodes in any of the three layouts. */
function callInputs(file: string, name: string, inbound: unknown): string[] {
  const where = `layer ${name}`;
  const shown = (): string => JSON.stringify(inbound)?.slice(0, 160) ?? 'undefined';
  if (!Array.isArray(inbound) || inbound.length !== 1) {
    throw new ModelImportError(file, `${where} must be called exactly once (inbound_nodes ${shown()}); a layer shared between calls (or a config without inbound_nodes) is not supported`);
  }
  const node: unknown = inbound[0];
  let refs: unknown[];
  if (isObject(node)) {
    // Keras 3: tensors among the positional args; tensors passed as keyword args are not supported.
    refs = kerasTensors(node.args);
    if (kerasTensors(Object.values(isObject(node.kwargs) ? node.kwargs : {})).length) {
      throw new ModelImportError(file, `${where}: tensors passed as keyword arguments (${Object.keys(node.kwargs as Json).join(', ')}) are not supported`);
    }
  } else if (Array.isArray(node) && typeof node[0] === 'string') {
    // TF 1.x tf.keras: the node is itself the one connection.
    refs = [node];
  } else if (Array.isArray(node)) {
    refs = node;
  } else {
    throw new ModelImportError(file, `${where}: inbound_nodes ${shown()} is in none of the Keras 2, tf.keras 2.2.4-tf or Keras 3 layouts`);
  }
  if (refs.length === 0) throw new ModelImportError(file, `${where}: inbound_nodes ${shown()} names no input`);
  return refs.map((ref) => tensorRef(file, ref, where));
}

function buildFunctional(file: string, modelName: string, layers: KerasLayerConfig[], cfg: Json): tf.LayersModel {
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
      const args = callInputs(file, name, l.inbound_nodes).map(tensorOf);
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

/** The layers of a Keras model config (`{class_name, config}`), in the order Keras lists them (model.layers). */
export interface KerasModelConfig {
  /** Functional also for class Model (tf.keras before 2.4). */
  kind: 'Sequential' | 'Functional';
  name: string;
  layers: KerasLayerConfig[];
  config: Json;
}

/** Checks the outline of a Keras model config; the layers themselves are checked when built. */
export function parseKerasConfig(file: string, modelConfig: unknown): KerasModelConfig {
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string') {
    throw new ModelImportError(file, 'model_config is not a {class_name, config} object');
  }
  const kind = modelConfig.class_name;
  const cfg = modelConfig.config;
  const name = isObject(cfg) && typeof cfg.name === 'string' ? cfg.name : 'imported';
  if (kind === 'Sequential') {
    // Keras <= 2.2.4 stored the layer list itself as the config.
    const layers = parseLayers(file, Array.isArray(cfg) ? cfg : isObject(cfg) ? cfg.layers : undefined);
    return { kind: 'Sequential', name, layers, config: isObject(cfg) ? cfg : {} };
  }
  if (kind === 'Functional' || kind === 'Model') {
    if (!isObject(cfg)) throw new ModelImportError(file, `model_config of the ${kind} model has no config object`);
    return { kind: 'Functional', name, layers: parseLayers(file, cfg.layers), config: cfg };
  }
  throw new ModelImportError(file, `model class ${kind} is not supported (Sequential or functional models only)`);
}

/**
 * A tfjs model with the topology of a Keras model config (`{class_name, config}`: the model_config
 * attribute of an .h5, the config.json of a .keras, model.to_json()); its weights are freshly
 * initialised.
 */
export function modelFromKerasConfig(file: string, modelConfig: unknown): tf.LayersModel {
  return buildKerasModel(file, parseKerasConfig(file, modelConfig));
}

export function buildKerasModel(file: string, m: KerasModelConfig): tf.LayersModel {
  return m.kind === 'Sequential' ? buildSequential(file, m.name, m.layers) : buildFunctional(file, m.name, m.layers, m.config);
}

/** The role of a weight: "dense_1/kernel:0" -> "kernel", tfjs "dense_1/kernel" -> "kernel". */
export function weightRole(name: string): string {
  return (name.split('/').at(-1) ?? name).replace(/:\d+$/, '');
}

/** A stored weight array; its name ends in its role (kernel, bias, gamma, ...), as Keras names it. */
export interface StoredWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** The weights a file holds, by layer name. */
export interface StoredWeights {
  /** Where they are in the file, for messages ("model_weights", "model.weights.h5"). */
  where: string;
  /** Every layer the file holds at least one weight for. */
  layers: readonly string[];
  /** The weights of one layer (empty or undefined when there are none). */
  of(layer: string): readonly StoredWeight[] | undefined;
}

/**
 * The roles of a layer's weights in the order Keras lists them (trainable, then non-trainable):
 * Dense kernel [in, out], bias [out]; BatchNormalization gamma, beta, moving_mean, moving_variance,
 * gamma/beta absent when scale/center is false. For formats that store weights by position.
 */
export function kerasWeightRoles(l: KerasLayerConfig): string[] {
  const c = l.config;
  if (l.class_name === 'Dense') return c.use_bias === false ? ['kernel'] : ['kernel', 'bias'];
  if (l.class_name === 'BatchNormalization') return [...(c.scale === false ? [] : ['gamma']), ...(c.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
  return [];
}

/** Assigns the stored weights to every layer of `model` that has weights, matching layers by name and weights by role. */
export function assignWeights(file: string, model: tf.LayersModel, stored: StoredWeights): void {
  const unused = new Set(stored.layers);
  for (const layer of model.layers) {
    const wanted = layer.weights;
    if (wanted.length === 0) continue;
    const have = stored.of(layer.name) ?? [];
    const roles = wanted.map((w) => weightRole(w.originalName));
    if (have.length === 0) {
      throw new ModelImportError(file, `layer ${layer.name}: no weights in ${stored.where} (expected ${roles.join(', ')})`);
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
    unused.delete(layer.name);
  }
  if (unused.size) throw new ModelImportError(file, `${stored.where} holds weights for layers not in the model config: ${[...unused].join(', ')}`);
}
