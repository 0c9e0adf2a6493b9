import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_NAMES, FEATURE_SPEC_ID } from '@pitwall/common';
import { loadKerasH5 } from '../src/keras-h5.js';
import { ModelImportError, weightRole } from '../src/keras-model.js';
import { completeMetadata, importModel, type ImportModelOptions } from '../src/model-import.js';
import { loadModelDir } from '@pitwall/model';
import { D, predictRows, rejection, withTmpDir } from '@pitwall/model/testing';
import { ACT, batchNorm, dense, denseConfig, f32, kerasModelConfig, pseudoRandom, writeKerasH5, type FixtureLayer, type FixtureModel } from './keras-h5-fixtures.js';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

/** Dense(4, relu, input 3) -> Dense(2, linear), weights chosen by hand. */
const K1 = [0.5, -1, 0.25, 2, 1, 0.5, -0.5, -1, -2, 0.75, 1.5, 0.1]; // [3, 4] row-major
const B1 = [0.1, -0.2, 0.3, 0];
const K2 = [1, -1, 0.5, 2, -0.25, 0.5, 3, -2]; // [4, 2]
const B2 = [0.05, -0.05];

function smallSequential(extra: Partial<FixtureModel> = {}): FixtureModel {
  return {
    kind: 'Sequential',
    name: 'sequential',
    layers: [
      { class_name: 'InputLayer', config: { name: 'dense_input', batch_input_shape: [null, 3], sparse: false, ragged: false } },
      {
        class_name: 'Dense',
        config: denseConfig('dense', 4, 'relu'),
        weights: [
          { role: 'kernel', shape: [3, 4], values: K1 },
          { role: 'bias', shape: [4], values: B1 },
        ],
      },
      {
        class_name: 'Dense',
        config: denseConfig('dense_1', 2, 'linear'),
        weights: [
          { role: 'kernel', shape: [4, 2], values: K2 },
          { role: 'bias', shape: [2], values: B2 },
        ],
      },
    ],
    ...extra,
  };
}

const INPUTS = [
  [1, 2, 3],
  [-1, 0.5, 2],
  [0, 0, 0],
  [3, -2, -1],
];

function assertClose(actual: number[][], expected: number[][], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((row, i) => {
    assert.equal(row.length, expected[i]!.length);
    row.forEach((v, j) => {
      const e = expected[i]![j]!;
      assert.ok(Math.abs(v - e) <= tol * Math.max(1, Math.abs(e)), `row ${i} column ${j}: ${v} vs ${e}`);
    });
  });
}

/** 108 -> 16 (tanh) -> BatchNormalization -> Dropout -> 108 (linear), pseudo-random weights. */
function autoencoder(width = D): { fixture: FixtureModel; forward: (x: number[]) => number[] } {
  const h = 16;
  const k1 = f32(pseudoRandom(width * h, 1, 0.2));
  const b1 = f32(pseudoRandom(h, 2, 0.1));
  const gamma = f32(pseudoRandom(h, 3, 0.5).map((v) => 1 + v));
  const beta = f32(pseudoRandom(h, 4, 0.3));
  const mean = f32(pseudoRandom(h, 5, 0.2));
  const variance = f32(pseudoRandom(h, 6, 0.4).map((v) => 0.5 + Math.abs(v)));
  const k2 = f32(pseudoRandom(h * width, 7, 0.2));
  const b2 = f32(pseudoRandom(width, 8, 0.1));
  const eps = 0.001;
  const layers: FixtureLayer[] = [
    { class_name: 'InputLayer', config: { name: 'features', batch_input_shape: [null, width], sparse: false, ragged: false } },
    {
      class_name: 'Dense',
      config: denseConfig('encoder', h, 'tanh'),
      weights: [
        { role: 'kernel', shape: [width, h], values: k1 },
        { role: 'bias', shape: [h], values: b1 },
      ],
    },
    {
      class_name: 'BatchNormalization',
      config: { name: 'bn', axis: [1], momentum: 0.99, epsilon: eps, center: true, scale: true },
      // Trainable first, then non-trainable, as Keras writes them.
      weights: [
        { role: 'gamma', shape: [h], values: gamma },
        { role: 'beta', shape: [h], values: beta },
        { role: 'moving_mean', shape: [h], values: mean },
        { role: 'moving_variance', shape: [h], values: variance },
      ],
    },
    { class_name: 'Dropout', config: { name: 'dropout', rate: 0.2, noise_shape: null, seed: null } },
    {
      class_name: 'Dense',
      config: denseConfig('decoder', width, 'linear'),
      weights: [
        { role: 'kernel', shape: [h, width], values: k2 },
        { role: 'bias', shape: [width], values: b2 },
      ],
    },
  ];
  const forward = (x: number[]): number[] => {
    const z = dense(x, k1, b1, h).map(ACT.tanh!);
    return dense(batchNorm(z, gamma, beta, mean, variance, eps), k2, b2, width);
  };
  return { fixture: { kind: 'Sequential', name: 'pitwall_keras_ae', layers }, forward };
}

function userMetadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description: 'keras autoencoder for tests',
    features: [...FEATURE_NAMES],
    normalization: { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 1) },
    threshold: 0.5,
    ...overrides,
  };
}

async function importInto(dir: string, file: string, o: Partial<ImportModelOptions> = {}) {
  return importModel({
    format: 'keras',
    file,
    name: 'keras-ae',
    version: '1',
    metadata: userMetadata(),
    modelsDir: path.join(dir, 'models'),
    now: () => Date.UTC(2025, 5, 1),
    ...o,
  });
}

describe('loadKerasH5', () => {
  it('rebuilds a Sequential Dense model whose predictions match a hand-computed forward pass', async () => {
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'small.h5');
      await writeKerasH5(file, smallSequential());
      const { model, kerasVersion, backend } = await loadKerasH5(file);
      try {
        assert.equal(kerasVersion, '2.15.0');
        assert.equal(backend, 'tensorflow');
        assert.deepEqual(model.inputs[0]!.shape, [null, 3]);
        assert.deepEqual(model.outputs[0]!.shape, [null, 2]);
        const expected = INPUTS.map((x) => dense(dense(x, K1, B1, 4).map(ACT.relu!), K2, B2, 2));
        assertClose(predictRows(model, INPUTS), expected);
        // The relu must matter for these inputs, or a missing activation would pass unnoticed.
        const noRelu = INPUTS.map((x) => dense(dense(x, K1, B1, 4), K2, B2, 2));
        assert.ok(noRelu.some((row, i) => row.some((v, j) => Math.abs(v - expected[i]![j]!) > 1e-3)));
      } finally {
        model.dispose();
      }
    });
  });

  it('reads the older Sequential form without an InputLayer (batch_input_shape on the first layer)', async () => {
    const fixture = smallSequential();
    fixture.layers.shift();
    fixture.layers[0]!.config.batch_input_shape = [null, 3];
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'old.h5');
      await writeKerasH5(file, fixture);
      const { model } = await loadKerasH5(file);
      try {
        assertClose(
          predictRows(model, INPUTS),
          INPUTS.map((x) => dense(dense(x, K1, B1, 4).map(ACT.relu!), K2, B2, 2)),
        );
      } finally {
        model.dispose();
      }
    });
  });

  it('rebuilds a functional model with a skip connection (Concatenate) and elu/selu/sigmoid', async () => {
    const k1 = f32(pseudoRandom(3 * 5, 11)),
      b1 = f32(pseudoRandom(5, 12));
    const k2 = f32(pseudoRandom(5 * 5, 13)),
      b2 = f32(pseudoRandom(5, 14));
    const k3 = f32(pseudoRandom(8 * 2, 15)),
      b3 = f32(pseudoRandom(2, 16));
    const fixture: FixtureModel = {
      kind: 'Functional',
      name: 'model',
      inputs: ['input_1'],
      outputs: ['out'],
      layers: [
        { class_name: 'InputLayer', config: { name: 'input_1', batch_input_shape: [null, 3], sparse: false, ragged: false } },
        {
          class_name: 'Dense',
          config: denseConfig('h1', 5, 'elu'),
          inbound: ['input_1'],
          weights: [
            { role: 'kernel', shape: [3, 5], values: k1 },
            { role: 'bias', shape: [5], values: b1 },
          ],
        },
        {
          class_name: 'Dense',
          config: denseConfig('h2', 5, 'selu'),
          inbound: ['h1'],
          weights: [
            { role: 'kernel', shape: [5, 5], values: k2 },
            { role: 'bias', shape: [5], values: b2 },
          ],
        },
        { class_name: 'Concatenate', config: { name: 'skip', axis: -1 }, inbound: ['input_1', 'h2'] },
        {
          class_name: 'Dense',
          config: denseConfig('out', 2, 'sigmoid'),
          inbound: ['skip'],
          weights: [
            { role: 'kernel', shape: [8, 2], values: k3 },
            { role: 'bias', shape: [2], values: b3 },
          ],
        },
      ],
    };
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'functional.h5');
      await writeKerasH5(file, fixture);
      const { model } = await loadKerasH5(file);
      try {
        const expected = INPUTS.map((x) => {
          const h2 = dense(dense(x, k1, b1, 5).map(ACT.elu!), k2, b2, 5).map(ACT.selu!);
          return dense([...x, ...h2], k3, b3, 2).map(ACT.sigmoid!);
        });
        assertClose(predictRows(model, INPUTS), expected);
      } finally {
        model.dispose();
      }
    });
  });

  it('reads a tf.keras 2.2.4-tf functional model, single-input connections one level flatter', async () => {
    // The shape of the reference demo's autoencoder (kaiwaehner/hivemq-mqtt-tensorflow-kafka-...,
    // models/autoencoder_sensor_anomaly_detection.h5): 30 -> 14 tanh (with an L1 activity
    // regulariser, which does not change inference) -> 7 relu -> 7 tanh -> 30 relu, saved by
    // TensorFlow 1.x's tf.keras. Before the fix: 'connection "dense_2" is not in the Keras 2 format'.
    const sizes = [30, 14, 7, 7, 30];
    const acts = ['tanh', 'relu', 'tanh', 'relu'];
    const ws = acts.map((_, i) => ({ k: f32(pseudoRandom(sizes[i]! * sizes[i + 1]!, 40 + i, 0.3)), b: f32(pseudoRandom(sizes[i + 1]!, 50 + i, 0.1)) }));
    const names = ['dense', 'dense_1', 'dense_2', 'dense_3'];
    const fixture: FixtureModel = {
      kind: 'Functional',
      tf1: true,
      kerasVersion: '2.2.4-tf',
      name: 'model',
      inputs: ['input_1'],
      outputs: ['dense_3'],
      layers: [
        { class_name: 'InputLayer', config: { name: 'input_1', batch_input_shape: [null, 30], sparse: false } },
        ...names.map((name, i) => ({
          class_name: 'Dense',
          config: denseConfig(name, sizes[i + 1]!, acts[i]!, i === 0 ? { activity_regularizer: { class_name: 'L1L2', config: { l1: 1e-7, l2: 0 } } } : {}),
          inbound: [i === 0 ? 'input_1' : names[i - 1]!],
          weights: [
            { role: 'kernel', shape: [sizes[i]!, sizes[i + 1]!], values: ws[i]!.k },
            { role: 'bias', shape: [sizes[i + 1]!], values: ws[i]!.b },
          ],
        })),
      ],
    };
    const config = kerasModelConfig(fixture) as { config: { layers: { inbound_nodes: unknown }[]; input_layers: unknown } };
    assert.deepEqual(config.config.layers[2]!.inbound_nodes, [['dense', 0, 0, {}]], 'the fixture writes the flat form');
    assert.deepEqual(config.config.input_layers, ['input_1', 0, 0]);
    const rows = [pseudoRandom(30, 60), pseudoRandom(30, 61), new Array<number>(30).fill(0)];
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'tf1.h5');
      await writeKerasH5(file, fixture);
      const { model, kerasVersion } = await loadKerasH5(file);
      try {
        assert.equal(kerasVersion, '2.2.4-tf');
        const expected = rows.map((x) => ws.reduce((h, w, i) => dense(h, w.k, w.b, sizes[i + 1]!).map(ACT[acts[i]!]!), x));
        assertClose(predictRows(model, rows), expected);
      } finally {
        model.dispose();
      }
    });
  });

  it('names the layer and its type when a layer is not supported', async () => {
    const fixture = smallSequential();
    fixture.layers.splice(2, 0, { class_name: 'Conv1D', config: { name: 'conv_a', filters: 2, kernel_size: [3] } });
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'conv.h5');
      await writeKerasH5(file, fixture);
      const err = await rejection(loadKerasH5(file));
      assert.ok(err instanceof ModelImportError, String(err));
      assert.match(err.message, /layer conv_a has unsupported type Conv1D/);
    });
  });

  it('refuses an unsupported activation, naming it', async () => {
    const fixture = smallSequential();
    fixture.layers[1]!.config.activation = 'exponential';
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'act.h5');
      await writeKerasH5(file, fixture);
      const err = await rejection(loadKerasH5(file));
      assert.match(err.message, /layer dense \(Dense\): activation "exponential" is not supported/);
    });
  });

  it('refuses a file whose weights for a layer are missing, naming the layer', async () => {
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'noweights.h5');
      await writeKerasH5(file, smallSequential({ dropWeightsOf: ['dense_1'] }));
      const err = await rejection(loadKerasH5(file));
      assert.ok(err instanceof ModelImportError);
      assert.match(err.message, /layer dense_1: no weights in model_weights \(expected kernel, bias\)/);
    });
  });

  it('refuses a weight listed in weight_names whose dataset is missing', async () => {
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'nobias.h5');
      await writeKerasH5(file, smallSequential({ dropDatasets: ['dense/bias'] }));
      const err = await rejection(loadKerasH5(file));
      assert.match(err.message, /layer dense: weight dense\/bias:0 is listed in weight_names but its dataset is missing/);
    });
  });

  it('refuses weights of the wrong shape', async () => {
    const fixture = smallSequential();
    fixture.layers[2]!.weights![0] = { role: 'kernel', shape: [2, 4], values: K2 };
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'shape.h5');
      await writeKerasH5(file, fixture);
      const err = await rejection(loadKerasH5(file));
      assert.match(err.message, /layer dense_1: weight dense_1\/kernel:0 has shape \[2,4\], the layer needs \[4,2\]/);
    });
  });

  it('refuses files that are not whole-model Keras 2 or 3 files', async () => {
    await withTmpDir(async (dir) => {
      const text = path.join(dir, 'not.h5');
      await writeFile(text, 'hello');
      assert.match((await rejection(loadKerasH5(text))).message, /not a readable HDF5 file/);
      const k1 = path.join(dir, 'k1.h5');
      await writeKerasH5(k1, smallSequential({ kerasVersion: '1.2.2' }));
      assert.match((await rejection(loadKerasH5(k1))).message, /keras_version is 1\.2\.2; only files written by Keras 2\.x or 3\.x/);
      assert.match((await rejection(loadKerasH5(path.join(dir, 'missing.h5')))).message, /cannot read the file/);
    });
  });

  it('takes the role of a weight from its name', () => {
    assert.equal(weightRole('dense_1/kernel:0'), 'kernel');
    assert.equal(weightRole('batch_normalization/moving_variance:0'), 'moving_variance');
    assert.equal(weightRole('encoder/bias'), 'bias');
  });
});

describe('importModel (keras-h5)', () => {
  it('writes a version directory that loadModelDir accepts and that predicts like the Keras model', async () => {
    const { fixture, forward } = autoencoder();
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'ae.h5');
      await writeKerasH5(file, fixture);
      const result = await importInto(dir, file);
      assert.equal(result.dir, path.join(dir, 'models', 'keras-ae', '1'));
      assert.deepEqual((await readdir(path.join(dir, 'models', 'keras-ae'))).sort(), ['1'], 'no temporary directory left behind');
      const loaded = await loadModelDir(result.dir);
      try {
        const m = loaded.metadata;
        assert.equal(m.name, 'keras-ae');
        assert.equal(m.version, '1');
        assert.equal(m.featureSpec, FEATURE_SPEC_ID);
        assert.equal(m.threshold, 0.5);
        assert.equal(m.description, 'keras autoencoder for tests');
        assert.equal(m.createdAt, '2025-06-01T00:00:00.000Z');
        assert.deepEqual(m.window, { sizeMs: 10_000, rateHz: 1 });
        assert.deepEqual(m.imported_from, { format: 'keras-h5', file: 'ae.h5', keras_version: '2.15.0', backend: 'tensorflow', imported_at: '2025-06-01T00:00:00.000Z' });
        assert.ok(Object.keys(m.groups).length > 0);
        const rows = [pseudoRandom(D, 21, 2), pseudoRandom(D, 22, 2), FEATURE_NAMES.map(() => 0)];
        assertClose(predictRows(loaded.model, rows), rows.map(forward));
      } finally {
        loaded.model.dispose();
      }
    });
  });

  it('refuses a model whose input width is not the feature spec width, and writes nothing', async () => {
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'small.h5');
      await writeKerasH5(file, smallSequential());
      const err = await rejection(importInto(dir, file));
      assert.ok(err instanceof ModelImportError, String(err));
      assert.match(err.message, new RegExp(`small\\.h5: the model takes 3 values per row \\(input \\[null,3\\]\\) and returns 2 \\(output \\[null,2\\]\\); a Pitwall model takes the ${D} features`));
      const left = await readdir(path.join(dir, 'models')).catch(() => []);
      assert.deepEqual(left, []);
    });
  });

  it('refuses an output that is not a reconstruction of the input', async () => {
    const { fixture } = autoencoder();
    const last = fixture.layers.at(-1)!;
    last.config = denseConfig('decoder', 7, 'linear');
    last.weights = [
      { role: 'kernel', shape: [16, 7], values: pseudoRandom(16 * 7, 9) },
      { role: 'bias', shape: [7], values: pseudoRandom(7, 10) },
    ];
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'ae7.h5');
      await writeKerasH5(file, fixture);
      assert.match((await rejection(importInto(dir, file))).message, new RegExp(`the model takes ${D} values per row \\(input \\[null,${D}\\]\\) and returns 7 \\(output \\[null,7\\]\\)`));
    });
  });

  it('lists every missing required metadata field at once', async () => {
    const { fixture } = autoencoder();
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'ae.h5');
      await writeKerasH5(file, fixture);
      const err = await rejection(importInto(dir, file, { metadata: { description: 'x', normalization: { mean: [] } } }));
      assert.ok(err instanceof ModelImportError);
      assert.match(err.message, /missing required field\(s\): features, normalization\.std, threshold/);
    });
  });

  it('refuses features in another order, an existing version and a conflicting name', async () => {
    const { fixture } = autoencoder();
    await withTmpDir(async (dir) => {
      const file = path.join(dir, 'ae.h5');
      await writeKerasH5(file, fixture);
      const swapped = [...FEATURE_NAMES];
      [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
      assert.match((await rejection(importInto(dir, file, { metadata: userMetadata({ features: swapped }) }))).message, /first difference at position 0/);
      await importInto(dir, file);
      assert.match((await rejection(importInto(dir, file))).message, /exists; pick another version or pass --force/);
      const again = await importInto(dir, file, { force: true, metadata: userMetadata({ threshold: 0.75 }) });
      assert.equal(JSON.parse(await readFile(path.join(again.dir, 'metadata.json'), 'utf8')).threshold, 0.75);
      assert.match((await rejection(importInto(dir, file, { version: '2', metadata: userMetadata({ name: 'other' }) }))).message, /metadata name is "other"/);
    });
  });
});

describe('importModel (tfjs)', () => {
  it('imports a tensorflowjs_converter layers model with sharded weights', async () => {
    await withTmpDir(async (dir) => {
      const src = tf.sequential({
        layers: [tf.layers.dense({ units: 8, inputShape: [D], activation: 'relu', name: 'enc' }), tf.layers.dense({ units: D, name: 'dec' })],
      });
      // Weights laid out as tensorflowjs_converter does: model.json plus group1-shard{i}of{n}.bin next to it.
      await src.save(
        tf.io.withSaveHandler(async (a) => {
          const data = Buffer.from(tf.io.CompositeArrayBuffer.join(a.weightData));
          const half = Math.floor(data.length / 8) * 4;
          await writeFile(path.join(dir, 'group1-shard1of2.bin'), data.subarray(0, half));
          await writeFile(path.join(dir, 'group1-shard2of2.bin'), data.subarray(half));
          const json = {
            format: 'layers-model',
            generatedBy: 'keras v2.15.0',
            convertedBy: 'TensorFlow.js Converter v4.22.0',
            modelTopology: a.modelTopology,
            weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: a.weightSpecs }],
          };
          await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      const rows = [pseudoRandom(D, 31, 2), pseudoRandom(D, 32, 2)];
      const expected = predictRows(src, rows);
      src.dispose();
      const result = await importInto(dir, path.join(dir, 'model.json'), { format: 'tfjs' });
      const loaded = await loadModelDir(result.dir);
      try {
        assertClose(predictRows(loaded.model, rows), expected);
        assert.deepEqual((loaded.metadata.imported_from as Record<string, unknown>).converted_by, 'TensorFlow.js Converter v4.22.0');
      } finally {
        loaded.model.dispose();
      }
    });
  });
});

describe('completeMetadata', () => {
  it('fills defaults, keeps user fields, and lets the command line decide name and version', () => {
    const from = { format: 'keras-h5' as const, file: 'm.h5', keras_version: '2.12.0', backend: 'tensorflow', imported_at: '2025-01-02T00:00:00.000Z' };
    const m = completeMetadata(userMetadata({ description: undefined, extra: 1 }), { name: 'n', version: '3', importedFrom: from, source: 'meta.json' });
    assert.equal(m.name, 'n');
    assert.equal(m.version, '3');
    assert.equal(m.description, 'keras-h5 model imported from m.h5 (Keras 2.12.0)');
    assert.equal(m.createdAt, '2025-01-02T00:00:00.000Z');
    assert.equal(m.extra, 1);
    assert.deepEqual(m.imported_from, from);
    assert.throws(() => completeMetadata([], { name: 'n', version: '3', importedFrom: from, source: 'meta.json' }), /must be a JSON object/);
    assert.throws(() => completeMetadata(userMetadata({ window: { sizeMs: 0 } }), { name: 'n', version: '3', importedFrom: from, source: 'meta.json' }), /window must be/);
  });
});
