/**
 * tfjs graph models (tensorflowjs_converter output of a SavedModel) next to layers models.
 *
 * The fixtures in test/fixtures/tfjs-graph/ were written by the real converter (make_fixtures.py
 * there says how): `tiny` has hand-picked weights, `pitwall-ae` is the committed
 * models/pitwall-ae/1 re-expressed as a TensorFlow SavedModel, `pitwall-ae-f16` the same converted
 * with float16 weight quantization. Their expected.json holds TensorFlow's own outputs.
 *
 * One contract suite runs against every format the scorer serves: what loadModelDir, scoreBatch,
 * validateModel, the model holder and saveModelDir promise must hold for each.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { silentLogger } from '@pitwall/common';
import {
  defaultModelsDir,
  formatOf,
  type LoadedModel,
  loadModelDir,
  METADATA_JSON,
  MODEL_JSON,
  ModelDirError,
  type ModelFormat,
  type ModelMetadata,
  saveModelDir,
  scoreBatch,
  selectBackend,
  signatureOf,
  validateModel,
} from '@pitwall/model';
import { createModelHolder, liveTensors } from '@pitwall/scoring';
import { importModel, loadTfjsModel, ModelImportError } from '../src/model-import.js';
import { fleetWindows, TRAINING_EPOCH_TS } from '../src/training.js';
import { predictRows, rejection, tmpDir, withTmpDir } from '@pitwall/model/testing';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/tfjs-graph/', import.meta.url));
const fixture = (name: string, file = MODEL_JSON): string => path.join(FIXTURES, name, file);
const COMMITTED = path.join(defaultModelsDir(), 'pitwall-ae', '1');

interface Expected {
  inputs: number[][];
  outputs: number[][];
}
const expectedOf = async (name: string): Promise<Expected> => JSON.parse(await readFile(fixture(name, 'expected.json'), 'utf8')) as Expected;

function maxAbsDiff(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i]!.length);
    row.forEach((v, j) => (d = Math.max(d, Math.abs(v - b[i]![j]!))));
  });
  return d;
}

let committedMeta: ModelMetadata;

/** The committed model's metadata as a user would hand it to the importer (no name or version). */
const importMetadata = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
  const { name: _n, version: _v, ...rest } = committedMeta;
  return { ...rest, description: 'pitwall-ae/1 converted by tensorflowjs_converter from a SavedModel', ...overrides };
};

async function importGraph(modelsDir: string, fixtureName: string, version: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const r = await importModel({ format: 'tfjs', file: fixture(fixtureName), name: 'pitwall-ae', version, metadata: importMetadata(overrides), modelsDir, now: () => Date.UTC(2026, 0, 2) });
  return r.dir;
}

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
  committedMeta = JSON.parse(await readFile(path.join(COMMITTED, METADATA_JSON), 'utf8')) as ModelMetadata;
});

describe('tensorflowjs_converter graph model (tiny, hand-checkable)', () => {
  // The fixture's weights (make_fixtures.py): y = relu(x W1 + b1) W2 + b2.
  const W1 = [
    [0.5, -1.0, 0.25],
    [1.5, 0.75, -0.5],
    [-0.25, 2.0, 1.0],
    [0.125, -0.375, 0.625],
  ];
  const b1 = [0.1, -0.2, 0.3];
  const W2 = [
    [1.0, -0.5],
    [0.25, 2.0],
    [-1.5, 0.75],
  ];
  const b2 = [0.05, -0.15];
  const forward = (x: number[]): number[] => {
    const h = b1.map((b, j) => Math.max(0, b + x.reduce((s, xi, i) => s + xi * W1[i]![j]!, 0)));
    return b2.map((b, k) => b + h.reduce((s, hj, j) => s + hj * W2[j]![k]!, 0));
  };

  it('is real converter output: graph-model format, fused MatMul+BiasAdd+Relu nodes', async () => {
    const json = JSON.parse(await readFile(fixture('tiny'), 'utf8')) as { format: string; convertedBy: string; modelTopology: { node: { op: string }[] } };
    assert.equal(json.format, 'graph-model');
    assert.match(json.convertedBy, /TensorFlow\.js Converter v4/);
    assert.deepEqual([...new Set(json.modelTopology.node.map((n) => n.op))].sort(), ['Const', 'Identity', 'Placeholder', '_FusedMatMul']);
  });

  it('loads as a graph model whose predictions match a hand-computed forward pass and TensorFlow', async () => {
    const { model, format, convertedBy } = await loadTfjsModel(fixture('tiny'));
    try {
      assert.equal(format, 'graph-model');
      assert.equal(formatOf(model), 'graph-model');
      assert.match(convertedBy ?? '', /TensorFlow\.js Converter/);
      const sig = signatureOf(model);
      assert.deepEqual(
        sig.inputs.map((i) => [i.name, i.shape, i.dtype]),
        [['x', [null, 4], 'float32']],
      );
      assert.equal(sig.outputs.length, 1);
      const expected = await expectedOf('tiny');
      const got = predictRows(model, expected.inputs);
      assert.ok(maxAbsDiff(got, expected.inputs.map(forward)) < 1e-5, `against the hand-computed pass: ${JSON.stringify(got)}`);
      assert.ok(maxAbsDiff(got, expected.outputs) < 1e-5, 'against TensorFlow');
      // A first row checked on paper: h = [3.35, 4.8, 5.05], y = [-2.975, 11.5625].
      assert.ok(Math.abs(got[0]![0]! + 2.975) < 1e-5 && Math.abs(got[0]![1]! - 11.5625) < 1e-5);
    } finally {
      model.dispose();
    }
  });

  it('is refused as a Pitwall version: its 4 inputs are not the 108 features', async () => {
    await withTmpDir(async (dir) => {
      const err = await rejection(importModel({ format: 'tfjs', file: fixture('tiny'), name: 'tiny', version: '1', metadata: importMetadata(), modelsDir: dir }));
      assert.ok(err instanceof ModelDirError, String(err));
      assert.match(err.message, /model input shape is \[null,4\], the metadata lists 108 features/);
    });
  });
});

/** Every format the scorer serves, as a version directory holding the committed model's weights. */
const FORMATS: Array<{ label: string; format: ModelFormat; tolerance: number; dir: (modelsDir: string) => Promise<string> }> = [
  { label: 'layers model (models/pitwall-ae/1)', format: 'layers-model', tolerance: 1e-5, dir: async () => COMMITTED },
  { label: 'graph model (converted SavedModel)', format: 'graph-model', tolerance: 1e-5, dir: (m) => importGraph(m, 'pitwall-ae', '2') },
  { label: 'graph model, float16-quantized weights', format: 'graph-model', tolerance: 3e-3, dir: (m) => importGraph(m, 'pitwall-ae-f16', '3') },
];

for (const impl of FORMATS) {
  describe(`servable model contract: ${impl.label}`, () => {
    let modelsDir: string;
    let dir: string;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ dir: modelsDir, cleanup } = await tmpDir());
      dir = await impl.dir(modelsDir);
    });
    after(() => cleanup());

    it('loads in its format with one [null,108] input, and dispose frees every tensor it made', async () => {
      const before = liveTensors();
      const loaded = await loadModelDir(dir);
      assert.equal(formatOf(loaded.model), impl.format);
      assert.deepEqual(
        signatureOf(loaded.model).inputs.map((i) => i.shape),
        [[null, 108]],
      );
      assert.ok(liveTensors() > before);
      loaded.model.dispose();
      assert.equal(liveTensors(), before);
    });

    it("reconstructs like TensorFlow's forward pass of the same weights", async () => {
      const expected = await expectedOf('pitwall-ae');
      const loaded = await loadModelDir(dir);
      try {
        const d = maxAbsDiff(predictRows(loaded.model, expected.inputs), expected.outputs);
        assert.ok(d < impl.tolerance, `max difference ${d}`);
      } finally {
        loaded.model.dispose();
      }
    });

    it('scores a simulated fleet like the committed layers model, and leaks no tensor doing so', async () => {
      const windows = fleetWindows({ cars: 6, seed: 777, idPrefix: 'contract', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 5 * 60_000 });
      const vectors = windows.map((w) => w.vector);
      const reference = await loadModelDir(COMMITTED);
      const loaded = await loadModelDir(dir);
      try {
        const want = scoreBatch(reference.model, reference.metadata, vectors);
        scoreBatch(loaded.model, loaded.metadata, vectors);
        const before = liveTensors();
        const got = scoreBatch(loaded.model, loaded.metadata, vectors);
        assert.equal(liveTensors(), before, 'scoreBatch leaves no tensor behind');
        assert.equal(got.length, want.length);
        got.forEach((s, i) => {
          const rel = Math.abs(s.score - want[i]!.score) / want[i]!.score;
          assert.ok(rel < impl.tolerance * 20, `window ${i}: ${s.score} vs ${want[i]!.score}`);
        });
      } finally {
        reference.model.dispose();
        loaded.model.dispose();
      }
    });

    it('gives the same scores on the wasm backend as on cpu', async () => {
      const vectors = fleetWindows({ cars: 2, seed: 778, idPrefix: 'wasm', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 3 * 60_000 }).map((w) => w.vector);
      const onCpu = await loadModelDir(dir);
      const cpu = scoreBatch(onCpu.model, onCpu.metadata, vectors).map((s) => s.score);
      onCpu.model.dispose();
      await selectBackend({ override: 'wasm', log: silentLogger });
      try {
        const onWasm = await loadModelDir(dir);
        const wasm = scoreBatch(onWasm.model, onWasm.metadata, vectors).map((s) => s.score);
        onWasm.model.dispose();
        wasm.forEach((s, i) => assert.ok(Math.abs(s - cpu[i]!) / cpu[i]! < 1e-4, `window ${i}: wasm ${s}, cpu ${cpu[i]}`));
      } finally {
        await tf.setBackend('cpu');
      }
    });

    it('is refused for a metadata width it does not have, naming the shape', async () => {
      const loaded = await loadModelDir(dir);
      try {
        assert.throws(
          () => validateModel(dir, loaded.model, 107),
          (err: unknown) => err instanceof ModelDirError && /model input shape is \[null,108\], the metadata lists 107 features/.test(err.message),
        );
      } finally {
        loaded.model.dispose();
      }
    });

    it('is refused when a weight is not finite, naming the weight', async () => {
      await withTmpDir(async (tmp) => {
        const copy = path.join(tmp, 'v');
        await cp(dir, copy, { recursive: true });
        const json = JSON.parse(await readFile(path.join(copy, MODEL_JSON), 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; quantization?: unknown }[] }[] };
        const shard = path.join(copy, json.weightsManifest[0]!.paths[0]!);
        const bytes = await readFile(shard);
        // A NaN in the first weight's first value (float32 or float16 bit pattern).
        if (json.weightsManifest[0]!.weights[0]!.quantization) bytes.writeUInt16LE(0x7e00, 0);
        else bytes.writeFloatLE(Number.NaN, 0);
        await writeFile(shard, bytes);
        const err = await rejection(loadModelDir(copy));
        assert.ok(err instanceof ModelDirError, String(err));
        assert.match(err.message, new RegExp(`weight ${json.weightsManifest[0]!.weights[0]!.name.replace(/[/]/g, '\\/')} holds a non-finite value \\(NaN\\) at index 0`));
      });
    });

    it('is refused when its weight file is truncated', async () => {
      await withTmpDir(async (tmp) => {
        const copy = path.join(tmp, 'v');
        await cp(dir, copy, { recursive: true });
        const json = JSON.parse(await readFile(path.join(copy, MODEL_JSON), 'utf8')) as { weightsManifest: { paths: string[] }[] };
        const shard = path.join(copy, json.weightsManifest[0]!.paths[0]!);
        const bytes = await readFile(shard);
        await writeFile(shard, bytes.subarray(0, bytes.length - 8));
        assert.match((await rejection(loadModelDir(copy))).message, new RegExp(`weight files hold ${bytes.length - 8} bytes, the manifest describes ${bytes.length}`));
      });
    });

    it('saves and loads back to the same predictions', async () => {
      await withTmpDir(async (tmp) => {
        const loaded = await loadModelDir(dir);
        const copy = path.join(tmp, 'copy');
        try {
          await saveModelDir(copy, loaded.model, loaded.metadata);
          const again = await loadModelDir(copy);
          const rows = (await expectedOf('pitwall-ae')).inputs;
          assert.equal(formatOf(again.model), impl.format);
          assert.deepEqual(predictRows(again.model, rows), predictRows(loaded.model, rows));
          again.model.dispose();
        } finally {
          loaded.model.dispose();
        }
      });
    });

    it('no tensor leak across 100 swaps through the model holder', async () => {
      const load = async (version: string): Promise<LoadedModel> => {
        const m = await loadModelDir(dir);
        return { ...m, metadata: { ...m.metadata, version } };
      };
      const holder = createModelHolder(await load('0'), { log: silentLogger });
      const vectors = fleetWindows({ cars: 1, seed: 5, idPrefix: 'swap', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 60_000 }).map((w) => w.vector);
      holder.remember(vectors);
      assert.equal(holder.offer(await load('1')).accepted, true);
      const before = liveTensors();
      const bytesBefore = tf.memory().numBytes;
      for (let i = 2; i < 102; i++) {
        assert.equal(holder.offer(await load(String(i))).accepted, true);
        scoreBatch(holder.current().model, holder.current().metadata, vectors);
      }
      assert.equal(liveTensors(), before, 'tensors after 100 swaps');
      assert.equal(tf.memory().numBytes, bytesBefore, 'bytes after 100 swaps');
      holder.dispose();
    });
  });
}

describe('importing a tensorflowjs_converter graph model', () => {
  it('writes a version directory that keeps the graph, its signature and where it came from', async () => {
    const { dir: modelsDir, cleanup } = await tmpDir();
    try {
      const dir = await importGraph(modelsDir, 'pitwall-ae', '4', { threshold: 2.5 });
      const json = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as { format: string; signature: unknown; weightsManifest: { paths: string[] }[] };
      const source = JSON.parse(await readFile(fixture('pitwall-ae'), 'utf8')) as { signature: unknown };
      assert.equal(json.format, 'graph-model');
      assert.deepEqual(json.signature, source.signature);
      assert.deepEqual(
        json.weightsManifest.map((g) => g.paths),
        [['weights.bin']],
      );
      const meta = JSON.parse(await readFile(path.join(dir, METADATA_JSON), 'utf8')) as ModelMetadata & { imported_from: Record<string, unknown> };
      assert.equal(meta.version, '4');
      assert.equal(meta.threshold, 2.5);
      assert.deepEqual(meta.normalization, committedMeta.normalization);
      assert.equal(meta.imported_from.format, 'tfjs-graph');
      assert.equal(meta.imported_from.converted_by, 'TensorFlow.js Converter v4.22.0');
      assert.equal(meta.imported_from.generated_by, '2.19.0');
    } finally {
      await cleanup();
    }
  });

  /** The converter's pitwall-ae output, edited by `edit`, then imported: the refusal. */
  async function importEdited(edit: (json: Record<string, unknown> & { modelTopology: { node: Array<Record<string, unknown>> } }) => void): Promise<Error> {
    return withTmpDir(async (tmp) => {
      await cp(path.join(FIXTURES, 'pitwall-ae'), path.join(tmp, 'src'), { recursive: true });
      const file = path.join(tmp, 'src', MODEL_JSON);
      const json = JSON.parse(await readFile(file, 'utf8'));
      edit(json);
      await writeFile(file, JSON.stringify(json));
      return rejection(importModel({ format: 'tfjs', file, name: 'pitwall-ae', version: '9', metadata: importMetadata(), modelsDir: path.join(tmp, 'models') }));
    });
  }
  const nodeNamed = (json: { modelTopology: { node: Array<Record<string, unknown>> } }, name: string): Record<string, unknown> => json.modelTopology.node.find((n) => n.name === name)!;

  it('refuses an op TensorFlow.js does not implement, naming it', async () => {
    const err = await importEdited((json) => void (nodeNamed(json, 'Identity').op = 'NoSuchTfOp'));
    assert.ok(err instanceof ModelDirError, String(err));
    assert.match(err.message, /the graph-model cannot predict a \[2,108\] batch: Unknown op 'NoSuchTfOp'/);
  });

  it('refuses a graph that needs executeAsync (a dynamic op), which cannot be scored between batches', async () => {
    const err = await importEdited((json) => void (nodeNamed(json, 'Identity').op = 'Where'));
    assert.ok(err instanceof ModelDirError, String(err));
    assert.match(err.message, /the graph-model cannot predict a \[2,108\] batch: .*executeAsync/);
  });

  it('refuses a graph whose output is not a reconstruction of the input', async () => {
    // Output the 12-wide bottleneck instead of the decoder's 108 values.
    const err = await importEdited((json) => void (nodeNamed(json, 'Identity').input = ['StatefulPartitionedCall/add_1']));
    assert.match(err.message, /maps a \[2,108\] batch to \[2,12\]/);
  });

  it('refuses a topology without GraphDef versions with a clear message', async () => {
    const err = await importEdited((json) => delete (json.modelTopology as { versions?: unknown }).versions);
    assert.match(err.message, /graph model topology has no "versions"/);
  });

  it('refuses a model.json without a weights manifest, naming the file', async () => {
    const err = await importEdited((json) => delete json.weightsManifest);
    assert.ok(err instanceof ModelImportError, String(err));
    assert.match(err.message, /model\.json: model\.json is not a tfjs model \(modelTopology or weightsManifest missing\)/);
  });

  it('refuses a weight shard outside the model folder', async () => {
    const err = await importEdited((json) => void ((json.weightsManifest as { paths: string[] }[])[0]!.paths = ['../../etc/passwd']));
    assert.match(err.message, /weight path \.\.\/\.\.\/etc\/passwd points outside the directory/);
  });
});
