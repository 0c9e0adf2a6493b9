import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { silentLogger } from '@pitwall/common';
import { BackendError, defaultLoaders, selectBackend, wasmDistDir, type BackendLoaders } from '../src/backend.js';

const failing = (message: string) => async (): Promise<void> => {
  throw new Error(message);
};

describe('selectBackend', () => {
  it('finds the .wasm binaries in node_modules', async () => {
    const files = await readdir(wasmDistDir());
    assert.ok(files.includes('tfjs-backend-wasm.wasm'), `no tfjs-backend-wasm.wasm in ${wasmDistDir()}`);
  });

  it('without override: tfjs-node is not installed, so wasm is chosen and computes correctly', async () => {
    const choice = await selectBackend({ log: silentLogger });
    assert.equal(choice.backend, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(
      choice.skipped.map((s) => s.backend),
      ['tensorflow'],
    );
    assert.match(choice.skipped[0]!.reason, /not available/);
    const product = tf.tidy(() =>
      tf
        .tensor2d([
          [1, 2],
          [3, 4],
        ])
        .matMul(tf.tensor2d([[5], [6]]))
        .arraySync(),
    );
    assert.deepEqual(product, [[17], [39]]);
    // A dense layer runs on wasm too.
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          units: 2,
          inputShape: [3],
          weights: [
            tf.tensor2d([
              [1, 0],
              [0, 1],
              [1, 1],
            ]),
            tf.tensor1d([0.5, -0.5]),
          ],
        }),
      ],
    });
    const y = tf.tidy(() => (model.predict(tf.tensor2d([[1, 2, 3]])) as tf.Tensor).arraySync());
    assert.deepEqual(y, [[4.5, 4.5]]);
    model.dispose();
  });

  it('falls back to cpu when wasm fails to load', async () => {
    const loaders: BackendLoaders = { ...defaultLoaders, tensorflow: failing('no tfjs-node'), wasm: failing('wasm broken') };
    const choice = await selectBackend({ log: silentLogger, loaders });
    assert.equal(choice.backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.deepEqual(choice.skipped, [
      { backend: 'tensorflow', reason: 'not available: no tfjs-node' },
      { backend: 'wasm', reason: 'not available: wasm broken' },
    ]);
  });

  it('an override picks exactly that backend', async () => {
    assert.equal((await selectBackend({ log: silentLogger, override: 'cpu' })).backend, 'cpu');
    assert.equal((await selectBackend({ log: silentLogger, override: 'wasm' })).backend, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
  });

  it('an override that cannot work fails, naming TFJS_BACKEND, instead of falling back', async () => {
    await assert.rejects(selectBackend({ log: silentLogger, override: 'tensorflow' }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.match(err.message, /TFJS_BACKEND=tensorflow requested but the backend is not available/);
      return true;
    });
  });

  it('fails when no backend works at all', async () => {
    const loaders: BackendLoaders = { tensorflow: failing('a'), wasm: failing('b'), cpu: failing('c') };
    await assert.rejects(selectBackend({ log: silentLogger, loaders }), /no TensorFlow.js backend works: tensorflow not available: a; wasm not available: b; cpu not available: c/);
  });
});
