/**
 * The two TensorFlow.js model formats the scorer serves, and the few operations scoring needs of
 * a model, answered the same way for both:
 *
 *   layers-model  tfjs-layers: Pitwall's own training, Keras .h5 import, and
 *                 `tensorflowjs_converter --output_format tfjs_layers_model`.
 *   graph-model   a converted TensorFlow SavedModel or frozen graph: what `tensorflowjs_converter`
 *                 writes for `--input_format tf_saved_model` (its default output format) and for
 *                 `--output_format tfjs_graph_model`. tfjs-converter executes the graph op by op.
 *
 * Either way the model maps a [batch, n] float32 tensor of z-scored features to its [batch, n]
 * reconstruction. The scorer runs a chunk synchronously between swaps (scoring.ts), so a graph
 * whose ops need `executeAsync` (control flow, dynamic shapes such as Where or NonMaxSuppression)
 * cannot serve; it is refused when loaded, by the probe prediction in validateModel.
 */
import * as tf from '@tensorflow/tfjs';

export type ServableModel = tf.LayersModel | tf.GraphModel;
export type ModelFormat = 'layers-model' | 'graph-model';

/** A dimension the model leaves open (the batch): layers say null, graphs -1 or nothing. */
export type Dim = number | null;

export const isGraphModel = (model: ServableModel): model is tf.GraphModel => model instanceof tf.GraphModel;

export const formatOf = (model: ServableModel): ModelFormat => (isGraphModel(model) ? 'graph-model' : 'layers-model');

/**
 * model.json of a graph model: the converter writes format "graph-model"; older converters wrote
 * no format, but a GraphDef topology is recognisable by its node list.
 */
export function isGraphModelJSON(json: { format?: string; modelTopology?: unknown }): boolean {
  if (json.format === 'graph-model') return true;
  if (json.format === 'layers-model') return false;
  const topology = json.modelTopology as { node?: unknown } | null | undefined;
  return Array.isArray(topology?.node);
}

const dims = (shape: readonly number[] | undefined | null): Dim[] | undefined => (shape == null ? undefined : shape.map((d) => (d == null || d < 0 ? null : d)));

export interface TensorSpec {
  name: string;
  /** undefined when the model does not declare it (a graph input without a shape attribute). */
  shape: Dim[] | undefined;
  dtype: string | undefined;
}

/** Declared inputs and outputs. A graph model's outputs come from its signature or output nodes. */
export function signatureOf(model: ServableModel): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  if (isGraphModel(model)) {
    const spec = (t: tf.ModelTensorInfo): TensorSpec => ({ name: t.name, shape: dims(t.shape), dtype: t.dtype });
    return { inputs: model.inputs.map(spec), outputs: model.outputs.map(spec) };
  }
  const spec = (t: tf.SymbolicTensor): TensorSpec => ({ name: t.name, shape: dims(t.shape as number[]), dtype: t.dtype });
  return { inputs: model.inputs.map(spec), outputs: model.outputs.map(spec) };
}

/** Every stored weight tensor with its name (a graph's constants included), for the finiteness check. */
export function storedWeights(model: ServableModel): Array<{ name: string; tensor: tf.Tensor }> {
  if (isGraphModel(model)) {
    return Object.entries(model.weights).flatMap(([name, tensors]) => tensors.map((tensor) => ({ name, tensor })));
  }
  return model.weights.map((w) => ({ name: w.originalName, tensor: w.read() }));
}

/**
 * The reconstruction of `z`. Call inside tf.tidy: intermediate and returned tensors belong to
 * the caller's scope. A graph model may answer with a one-entry list or, when the converter
 * recorded structured output keys, a one-entry map; both are unwrapped.
 */
export function reconstruct(model: ServableModel, z: tf.Tensor): tf.Tensor {
  // A layers model's predict cuts its input into batches of 32 rows by default: slices, one matMul
  // per slice and a concat. The whole chunk in one batch was 1.5-3x faster in the scoring benchmark
  // (wasm, 256 and 1024 rows); each row's result does not depend on the rows batched with it.
  const out = isGraphModel(model) ? model.predict(z) : model.predict(z, { batchSize: Math.max(1, z.shape[0] ?? 1) });
  if (out instanceof tf.Tensor) return out;
  const values = Array.isArray(out) ? out : Object.values(out);
  if (values.length !== 1 || !(values[0] instanceof tf.Tensor)) {
    throw new Error(`the model returned ${values.length} outputs; the scorer needs exactly one (the reconstruction)`);
  }
  return values[0];
}
