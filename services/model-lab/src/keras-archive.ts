/**
 * Reading a .keras archive (`model.save('model.keras')`: Keras 3, tf_keras 2.13+, and Keras 2.12
 * with save_format="keras_v3") into a tfjs LayersModel, with the same topology code as the .h5
 * path (keras-model.ts). loadKerasModel takes either kind of file, told apart by content: Keras
 * 2.12 writes HDF5 even to a .keras name unless asked for the archive.
 *
 * The archive is a zip (keras/src/saving/saving_lib.py):
 *   metadata.json     {"keras_version": "3.15.1", "date_saved": ...}
 *   config.json       the model config ({module, class_name, config, build_config, ...})
 *   model.weights.h5  HDF5; a layer's weights are the datasets vars/0, vars/1, ... of its group, in
 *                     Keras's order (Dense kernel, bias; BatchNormalization gamma, beta,
 *                     moving_mean, moving_variance), unnamed. The group is not named after the
 *                     layer but after its class, counted in model.layers order:
 *                       Keras 2.13+, 3   layers/<snake_case class>[_<n>]: dense, dense_1, dense_2, ...
 *                       Keras 2.12       _layer_checkpoint_dependencies/<snake_case class>[_<n>], where
 *                                        each layer with weights is listed twice (as layer-<i> and
 *                                        layer_with_weights-<j>), so: dense, dense_2, dense_4, ...
 *                     Keras 3.x writes the layer's name as the attribute `name` of vars; when
 *                     present it must match. vars/ at the top holds the model's own variables.
 *   assets/           none for the supported layers
 */
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import h5wasm, { type Group } from 'h5wasm/node';
import { attrText, datasetValues, hasHdf5Signature, loadKerasH5 } from './keras-h5.js';
import { assignWeights, buildKerasModel, type KerasLayerConfig, kerasWeightRoles, layerName, ModelImportError, parseKerasConfig, type StoredWeight } from './keras-model.js';
import { ZIP_SIGNATURE, zipEntries, zipRead } from './zip.js';

export interface KerasModel {
  model: tf.LayersModel;
  /** keras-h5: whole-model HDF5; keras: a .keras archive. */
  format: 'keras-h5' | 'keras';
  kerasVersion: string | undefined;
  backend: string | undefined;
}

/** keras.src.utils.naming.to_snake_case, as Keras names a layer's weights group. */
export function toSnakeCase(name: string): string {
  const s = name
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
  return s.startsWith('_') ? `private${s}` : s;
}

/**
 * Where each layer's weights are in model.weights.h5 (see the header): layer name -> group path.
 * `twice`: Keras 2.12, whose container lists every layer with weights twice.
 */
export function archiveWeightPaths(layers: readonly KerasLayerConfig[], root: string, twice: boolean): Map<string, string> {
  const used = new Map<string, number>();
  const paths = new Map<string, string>();
  for (const l of layers) {
    const key = toSnakeCase(l.class_name);
    const n = used.get(key) ?? 0;
    paths.set(layerName(l), `${root}/${n === 0 ? key : `${key}_${n}`}`);
    used.set(key, n + (twice && kerasWeightRoles(l).length > 0 ? 2 : 1));
  }
  return paths;
}

/** The datasets of a vars group, "0", "1", ... in order. */
function varsOf(file: string, vars: Group, where: string): { shape: number[]; values: Float32Array }[] {
  const keys = vars.keys();
  const out = keys.map((_, i) => {
    const ds = vars.get(String(i));
    if (!(ds instanceof h5wasm.Dataset)) throw new ModelImportError(file, `model.weights.h5: ${where} holds ${keys.join(', ')}, expected datasets 0..${keys.length - 1}`);
    return datasetValues(file, ds, `model.weights.h5: ${where}/${i}`);
  });
  return out;
}

function archiveWeights(file: string, h5: InstanceType<typeof h5wasm.File>, layers: readonly KerasLayerConfig[], sequential: boolean): Map<string, StoredWeight[]> {
  const twice = h5.get('_layer_checkpoint_dependencies') instanceof h5wasm.Group;
  const root = twice ? '_layer_checkpoint_dependencies' : 'layers';
  // Sequential.layers leaves out the InputLayer its config lists.
  const modelLayers = sequential ? layers.filter((l) => l.class_name !== 'InputLayer') : layers;
  const paths = archiveWeightPaths(modelLayers, root, twice);
  const stored = new Map<string, StoredWeight[]>();
  for (const l of modelLayers) {
    const name = layerName(l);
    const where = `${paths.get(name)!}/vars`;
    const vars = h5.get(where);
    const roles = kerasWeightRoles(l);
    if (!(vars instanceof h5wasm.Group)) {
      if (roles.length) throw new ModelImportError(file, `layer ${name} (${l.class_name}): model.weights.h5 has no ${where} (expected ${roles.join(', ')})`);
      continue;
    }
    const savedAs = vars.attrs.name ? attrText(vars.attrs.name.value) : undefined;
    if (savedAs !== undefined && savedAs !== name) {
      throw new ModelImportError(file, `model.weights.h5: ${where} holds the weights of layer ${savedAs}, not of layer ${name}; the archive's layer order does not match its config`);
    }
    const values = varsOf(file, vars, where);
    if (values.length !== roles.length) {
      throw new ModelImportError(
        file,
        `layer ${name} (${l.class_name}): model.weights.h5 ${where} holds ${values.length} arrays, the layer has ${roles.length}${roles.length ? ` (${roles.join(', ')})` : ''}`,
      );
    }
    if (values.length)
      stored.set(
        name,
        values.map((v, i) => ({ name: `${name}/${roles[i]!}`, ...v })),
      );
  }
  const top = h5.get('vars');
  if (top instanceof h5wasm.Group && top.keys().length) throw new ModelImportError(file, `model.weights.h5: top-level model variables (vars/${top.keys().join(', vars/')}) are not supported`);
  return stored;
}

function parseJson(file: string, bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new ModelImportError(file, `${what} is not valid JSON: ${(cause as Error).message}`, cause);
  }
}

/** Reads a .keras archive into a tfjs model with its weights. The caller owns the model. */
export async function loadKerasArchive(file: string): Promise<KerasModel> {
  const fail = (message: string, cause?: unknown): Error => new ModelImportError(file, message, cause);
  const buf = await readFile(file).catch((cause: Error) => {
    throw fail(`cannot read the file: ${cause.message}`, cause);
  });
  const entries = zipEntries(buf, fail);
  const entry = (name: string): Buffer => {
    const e = entries.get(name);
    if (!e) throw fail(`the archive has no ${name} (it holds ${[...entries.keys()].join(', ') || 'nothing'}); not a .keras model archive`);
    return zipRead(buf, e, fail);
  };
  const metadata = parseJson(file, entry('metadata.json'), 'metadata.json') as { keras_version?: unknown } | null;
  const kerasVersion = typeof metadata?.keras_version === 'string' ? metadata.keras_version : undefined;
  if (kerasVersion !== undefined && !/^[23]\./.test(kerasVersion)) throw fail(`keras_version is ${kerasVersion}; only archives written by Keras 2.x or 3.x are supported`);
  const config = parseJson(file, entry('config.json'), 'config.json');
  const parsed = parseKerasConfig(file, config);
  const weightsH5 = entry('model.weights.h5');
  const model = buildKerasModel(file, parsed);
  // h5wasm opens files by path: the weights go to a private temporary file.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-keras-'));
  try {
    const tmp = path.join(dir, 'model.weights.h5');
    await writeFile(tmp, weightsH5);
    if (!(await hasHdf5Signature(tmp))) throw fail('model.weights.h5 in the archive is not an HDF5 file');
    await h5wasm.ready;
    const h5 = new h5wasm.File(tmp, 'r');
    try {
      const stored = archiveWeights(file, h5, parsed.layers, parsed.kind === 'Sequential');
      assignWeights(file, model, { where: 'model.weights.h5', layers: [...stored.keys()], of: (layer) => stored.get(layer) });
    } finally {
      h5.close();
    }
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { model, format: 'keras', kerasVersion, backend: undefined };
}

/** A Keras model file of either kind, told apart by its first bytes: a .keras archive or a whole-model .h5. */
export async function loadKerasModel(file: string): Promise<KerasModel> {
  const s = await stat(file).catch((cause: Error) => {
    throw new ModelImportError(file, `cannot read the file: ${cause.message}`, cause);
  });
  if (!s.isFile()) throw new ModelImportError(file, 'not a file');
  const head = Buffer.alloc(ZIP_SIGNATURE.length);
  const fh = await open(file, 'r');
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  if (head.equals(ZIP_SIGNATURE)) return loadKerasArchive(file);
  if (!(await hasHdf5Signature(file))) throw new ModelImportError(file, 'neither a .keras archive (zip) nor a Keras HDF5 file');
  return { ...(await loadKerasH5(file)), format: 'keras-h5' };
}
