/**
 * Keras files written by the real libraries (test/fixtures/keras/, made by make_fixtures.py there:
 * tf_keras 2.19.0 and keras 3.15.1 on TensorFlow 2.19.1), loaded by the importer and compared with
 * the predictions of the library that wrote them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { FEATURE_NAMES } from '@pitwall/common';
import { predictRows, rejection, withTmpDir } from '@pitwall/model/testing';
import { loadKerasH5 } from '../src/keras-h5.js';
import { ModelImportError } from '../src/keras-model.js';
import { importModel } from '../src/model-import.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/keras/', import.meta.url));
const fixture = (name: string): string => path.join(FIXTURES, name);

interface Expected {
  library: Record<string, string>;
  inputs: number[][];
  outputs: number[][];
}
const expected = async (name: string): Promise<Expected> => JSON.parse(await readFile(fixture(`${name}.expected.json`), 'utf8')) as Expected;

function assertClose(actual: number[][], wanted: number[][], tol = 1e-5): void {
  assert.equal(actual.length, wanted.length);
  actual.forEach((row, i) => {
    assert.equal(row.length, wanted[i]!.length);
    row.forEach((v, j) => {
      const e = wanted[i]![j]!;
      assert.ok(Math.abs(v - e) <= tol * Math.max(1, Math.abs(e)), `row ${i} column ${j}: ${v} vs ${e}`);
    });
  });
}

/** The model_config attribute of an .h5. */
async function h5Config(file: string): Promise<{ config: { layers: { class_name: string; inbound_nodes: unknown }[]; input_layers: unknown } }> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'r');
  try {
    return JSON.parse(f.attrs.model_config!.value as string) as never;
  } finally {
    f.close();
  }
}

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const FIXTURE_FILES: Array<{ name: string; kerasVersion: string; library: string }> = [
  { name: 'keras2-functional.h5', kerasVersion: '2.19.0', library: 'tf_keras' },
  { name: 'tf1-flat.h5', kerasVersion: '2.2.4-tf', library: 'tf_keras' },
  { name: 'keras3-functional.h5', kerasVersion: '3.15.1', library: 'keras' },
];

describe('Keras files written by the real libraries', () => {
  for (const f of FIXTURE_FILES) {
    it(`${f.name}: predicts what ${f.library} predicted`, async () => {
      const want = await expected(f.name);
      const { model, kerasVersion } = await loadKerasH5(fixture(f.name));
      try {
        assert.equal(kerasVersion, f.kerasVersion);
        assertClose(predictRows(model, want.inputs), want.outputs);
      } finally {
        model.dispose();
      }
    });
  }

  it('the fixtures hold the layouts they are named after', async () => {
    const flat = await h5Config(fixture('tf1-flat.h5'));
    assert.deepEqual(flat.config.layers[1]!.inbound_nodes, [['input_1', 0, 0, {}]], 'tf.keras 2.2.4-tf: one connection per call, not a list of them');
    assert.deepEqual(flat.config.input_layers, ['input_1', 0, 0]);
    const nested = await h5Config(fixture('keras2-functional.h5'));
    assert.deepEqual(nested.config.layers[1]!.inbound_nodes, [[['features', 0, 0, {}]]]);
    const k3 = await h5Config(fixture('keras3-functional.h5'));
    const node = (k3.config.layers[1]!.inbound_nodes as { args: { class_name: string; config: { keras_history: unknown } }[] }[])[0]!;
    assert.equal(node.args[0]!.class_name, '__keras_tensor__');
    assert.deepEqual(node.args[0]!.config.keras_history, ['features', 0, 0]);
  });
});

describe('importing Keras files as Pitwall model versions', () => {
  const metadata = { features: [...FEATURE_NAMES], normalization: { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 1) }, threshold: 0.5 };

  it('a model made for other data is refused with its width and the width Pitwall needs', async () => {
    await withTmpDir(async (dir) => {
      for (const name of ['tf1-flat.h5', 'keras3-functional.h5']) {
        const err = await rejection(importModel({ format: 'keras-h5', file: fixture(name), name: 'other', version: '1', metadata, modelsDir: dir }));
        assert.ok(err instanceof ModelImportError, String(err));
        assert.match(
          err.message,
          new RegExp(`${name.replace('.', '\\.')}: the model takes 6 values per row \\(input \\[null,6\\]\\) and returns 6 \\(output \\[null,6\\]\\); a Pitwall model takes the 108 features of`),
        );
      }
    });
  });
});
