/**
 * Writes Keras 2 whole-model .h5 files the way keras/saving/legacy/hdf5_format.py does
 * (save_model_to_hdf5 + save_weights_to_hdf5_group), with known weights, so the importer can be
 * tested without Python. Also a plain-JS forward pass to check the imported model against.
 */
import h5wasm from 'h5wasm/node';
import { mulberry32 } from '@pitwall/common';

export const KERAS_VERSION = '2.15.0';

export interface FixtureWeight {
  /** Role as Keras names it: kernel, bias, gamma, beta, moving_mean, moving_variance. */
  role: string;
  shape: number[];
  values: number[];
}

export interface FixtureLayer {
  class_name: string;
  /** Keras layer config; `name` is required. */
  config: Record<string, unknown>;
  weights?: FixtureWeight[];
  /** Functional models: names of the layers feeding this one. */
  inbound?: string[];
}

/** Keras 2.13+ decorations of a layer config entry (ignored by the importer, present in real files). */
function entry(l: FixtureLayer, functional: boolean, tf1: boolean): Record<string, unknown> {
  const config = { trainable: true, dtype: 'float32', ...l.config };
  const e: Record<string, unknown> = tf1 ? { class_name: l.class_name, config } : { module: 'keras.layers', class_name: l.class_name, config, registered_name: null };
  if (functional) {
    e.name = l.config.name;
    const refs = (l.inbound ?? []).map((n) => [n, 0, 0, {}]);
    // tf.keras 2.2.4-tf writes a single-input call without the list of its inputs.
    e.inbound_nodes = l.class_name === 'InputLayer' ? [] : tf1 && refs.length === 1 ? refs : [refs];
  }
  return e;
}

export function denseConfig(name: string, units: number, activation: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    units,
    activation,
    use_bias: true,
    kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null }, registered_name: null },
    bias_initializer: { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
    ...extra,
  };
}

export interface FixtureModel {
  kind: 'Sequential' | 'Functional';
  name: string;
  layers: FixtureLayer[];
  /** Functional only. */
  inputs?: string[];
  outputs?: string[];
  kerasVersion?: string;
  /**
   * Write model_config as tf.keras of TensorFlow 1.x did (keras_version "2.2.4-tf"): class "Model",
   * no module/registered_name, single-input connections and single endpoints one level flatter.
   */
  tf1?: boolean;
  /** Layer names whose weights are left out of model_weights (to test incomplete files). */
  dropWeightsOf?: string[];
  /** Datasets to leave out although weight_names lists them, as "layer/role". */
  dropDatasets?: string[];
}

/** The model_config JSON Keras 2 writes for `m` (Sequential layers include the InputLayer). */
export function kerasModelConfig(m: FixtureModel): Record<string, unknown> {
  const functional = m.kind === 'Functional';
  const tf1 = m.tf1 === true;
  const config: Record<string, unknown> = { name: m.name, layers: m.layers.map((l) => entry(l, functional, tf1)) };
  if (functional) {
    const endpoints = (names: string[] = []): unknown[] => (tf1 && names.length === 1 ? [names[0], 0, 0] : names.map((n) => [n, 0, 0]));
    config.input_layers = endpoints(m.inputs);
    config.output_layers = endpoints(m.outputs);
  }
  return { class_name: functional && tf1 ? 'Model' : m.kind, config, keras_version: m.kerasVersion ?? KERAS_VERSION, backend: 'tensorflow' };
}

/** Fixed-length string dtype wide enough for every item, as numpy gives a list of bytes. */
const sDtype = (items: string[]): string => `S${Math.max(1, ...items.map((s) => Buffer.byteLength(s)))}`;

function stringListAttr(target: { create_attribute: InstanceType<typeof h5wasm.Group>['create_attribute'] }, name: string, items: string[]): void {
  // h5py writes np.asarray([b'...']) as a fixed-length string array, and an empty list as float64[0].
  if (items.length === 0) target.create_attribute(name, new Float64Array(0), [0]);
  else target.create_attribute(name, items, [items.length], sDtype(items));
}

export async function writeKerasH5(file: string, m: FixtureModel): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  try {
    const version = m.kerasVersion ?? KERAS_VERSION;
    // save_model_to_hdf5: model_metadata -> root attributes (str values, dicts as JSON).
    f.create_attribute('keras_version', version);
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('model_config', JSON.stringify(kerasModelConfig(m)));
    const mw = f.create_group('model_weights');
    // model.layers of a Sequential model does not include its InputLayer; a functional one does.
    const modelLayers = m.kind === 'Sequential' ? m.layers.filter((l) => l.class_name !== 'InputLayer') : m.layers;
    const names = modelLayers.map((l) => String(l.config.name));
    stringListAttr(mw, 'layer_names', names);
    mw.create_attribute('backend', 'tensorflow');
    mw.create_attribute('keras_version', version);
    // Groups in name order, as Keras sorts them.
    for (const l of [...modelLayers].sort((a, b) => String(a.config.name).localeCompare(String(b.config.name)))) {
      const lname = String(l.config.name);
      const g = mw.create_group(lname);
      const weights = m.dropWeightsOf?.includes(lname) ? [] : (l.weights ?? []);
      // Weight names are "<layer>/<role>:0"; the "/" makes a subgroup named after the layer.
      stringListAttr(
        g,
        'weight_names',
        weights.map((w) => `${lname}/${w.role}:0`),
      );
      if (weights.length) {
        const sub = g.create_group(lname);
        for (const w of weights) {
          if (m.dropDatasets?.includes(`${lname}/${w.role}`)) continue;
          sub.create_dataset({ name: `${w.role}:0`, data: Float32Array.from(w.values), shape: w.shape, dtype: '<f' });
        }
      }
    }
    const top = mw.create_group('top_level_model_weights');
    stringListAttr(top, 'weight_names', []);
  } finally {
    f.close();
  }
}

/** Deterministic values in [-scale, scale) (mulberry32). */
export function pseudoRandom(n: number, seed: number, scale = 1): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** Rounded through float32, as the values are stored. */
export const f32 = (xs: number[]): number[] => Array.from(Float32Array.from(xs));

// ---- plain-JS reference forward pass ---------------------------------------------------------

/** x [in] times kernel [in, out] (row-major, as Keras stores it) plus bias [out]. */
export function dense(x: number[], kernel: number[], bias: number[], units: number): number[] {
  const out = bias.slice();
  for (let j = 0; j < units; j++) for (let i = 0; i < x.length; i++) out[j]! += x[i]! * kernel[i * units + j]!;
  return out;
}

export const ACT: Record<string, (v: number) => number> = {
  linear: (v) => v,
  relu: (v) => Math.max(0, v),
  tanh: Math.tanh,
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  elu: (v) => (v > 0 ? v : Math.exp(v) - 1),
  selu: (v) => 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (Math.exp(v) - 1)),
};

/** Inference-time batch normalization: gamma * (x - mean) / sqrt(var + eps) + beta. */
export function batchNorm(x: number[], gamma: number[], beta: number[], mean: number[], variance: number[], eps: number): number[] {
  return x.map((v, i) => (gamma[i]! * (v - mean[i]!)) / Math.sqrt(variance[i]! + eps) + beta[i]!);
}
