/**
 * Reading a Keras whole-model HDF5 file (`model.save('model.h5')`) into a tfjs LayersModel,
 * without Python: h5wasm reads the file, the topology is rebuilt layer by layer from the Keras
 * config (keras-model.ts), and the weights are assigned by layer name.
 *
 * Layout written by Keras 2 (keras/saving/legacy/hdf5_format.py, save_model_to_hdf5) and by
 * Keras 3 saving to .h5 (keras/src/legacy/saving/legacy_h5_format.py, the same layout):
 *   /                      attrs: model_config (JSON string: {class_name, config}), keras_version,
 *                                 backend, training_config (optional, ignored here)
 *   /model_weights         attrs: layer_names (string array, in model.layers order), keras_version, backend
 *                          An attribute too large for one HDF5 object header is split into
 *                          layer_names0, layer_names1, ... (the same holds for weight_names).
 *   /model_weights/<layer> attrs: weight_names (e.g. "dense/kernel:0", "dense/bias:0"; Keras 3:
 *                          "dense/kernel"); every name is the path of a dataset relative to this
 *                          group (so "dense/kernel:0" is the dataset kernel:0 in the subgroup
 *                          dense). Layers without weights have an empty weight_names.
 *   /model_weights/top_level_model_weights  weights owned by the model itself (normally none)
 *   /optimizer_weights     optimizer state, ignored
 * Each weight is matched by its role (the name after the last "/", without ":0"), which names
 * what is missing when a file is incomplete. The config is Keras 2's, tf.keras 2.2.4-tf's or
 * Keras 3's, whichever wrote the file (see keras-model.ts for the layouts and the layers).
 */
import { open, stat } from 'node:fs/promises';
import type * as tf from '@tensorflow/tfjs';
import h5wasm, { type Dataset, type Group } from 'h5wasm/node';
import { assignWeights, ModelImportError, modelFromKerasConfig, type StoredWeight, type StoredWeights } from './keras-model.js';

/** A string attribute; h5py writes them fixed-length (NUL padded) or variable-length, both handled. */
export function attrText(value: unknown): string | undefined {
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

function readWeights(file: string, root: Group, layer: string): StoredWeight[] | undefined {
  const group = root.get(layer);
  if (!(group instanceof h5wasm.Group)) return undefined;
  const names = attrList(group, 'weight_names') ?? [];
  return names.map((wn) => {
    const ds = group.get(wn);
    if (!(ds instanceof h5wasm.Dataset)) throw new ModelImportError(file, `layer ${layer}: weight ${wn} is listed in weight_names but its dataset is missing`);
    return { name: wn, ...datasetValues(file, ds, `layer ${layer}: weight ${wn}`) };
  });
}

/** A dataset's shape and values as float32. */
export function datasetValues(file: string, d: Dataset, what: string): { shape: number[]; values: Float32Array } {
  const value = d.value;
  if (!ArrayBuffer.isView(value) || value instanceof BigInt64Array || value instanceof BigUint64Array) {
    throw new ModelImportError(file, `${what} is not a numeric array`);
  }
  return { shape: d.shape ?? [], values: Float32Array.from(value as unknown as ArrayLike<number>) };
}

/** The weights under /model_weights: a group per layer (listed in layer_names), its datasets listed in weight_names. */
function modelWeights(file: string, root: Group): StoredWeights {
  const cache = new Map<string, StoredWeight[] | undefined>();
  const of = (layer: string): StoredWeight[] | undefined => {
    if (!cache.has(layer)) cache.set(layer, readWeights(file, root, layer));
    return cache.get(layer);
  };
  const layers = (attrList(root, 'layer_names') ?? []).filter((n) => (of(n)?.length ?? 0) > 0);
  return { where: 'model_weights', layers, of };
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The HDF5 superblock signature sits at byte 0, or at 512, 1024, 2048, ... after a user block. */
export async function hasHdf5Signature(file: string): Promise<boolean> {
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

/** Reads a Keras 2 or 3 whole-model .h5 into a tfjs model with its weights. The caller owns the model. */
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
    if (kerasVersion !== undefined && !/^[23]\./.test(kerasVersion)) {
      // Keras 1 stored kernels in other layouts and named its config fields differently.
      throw new ModelImportError(file, `keras_version is ${kerasVersion}; only files written by Keras 2.x or 3.x are supported`);
    }
    const weights = h5.get('model_weights');
    if (!(weights instanceof h5wasm.Group)) throw new ModelImportError(file, 'no model_weights group');
    const model = modelFromKerasConfig(file, modelConfig);
    try {
      assignWeights(file, model, modelWeights(file, weights));
      const top = readWeights(file, weights, 'top_level_model_weights');
      if (top && top.length) throw new ModelImportError(file, `top-level model weights (${top.map((t) => t.name).join(', ')}) are not supported`);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return { model, kerasVersion, backend };
  } finally {
    h5.close();
  }
}
