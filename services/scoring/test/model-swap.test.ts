import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createCounters, silentLogger } from '@pitwall/common';
import { createModelHolder, liveTensors } from '../src/model-holder.js';
import { createModelWatcher } from '../src/model-watcher.js';
import { type LoadedModel, METADATA_JSON, saveModelDir, scoreBatch } from '@pitwall/model';
import { METRICS } from '../src/metrics.js';
import { linearModel, metadataFor, vectorWith, withTmpDir } from '@pitwall/model/testing';

await tf.setBackend('cpu');

const loaded = (version: string, scale = 1, bias = 0): LoadedModel => ({
  model: linearModel(scale, bias),
  metadata: metadataFor({ version }),
  dir: `/models/test-ae/${version}`,
});

describe('model holder', () => {
  it('a valid candidate is served from the next batch; the old one stays for rollback', () => {
    const holder = createModelHolder(loaded('1'), { log: silentLogger });
    assert.deepEqual(holder.offer(loaded('2', 0, 0)), { accepted: true });
    assert.equal(holder.current().metadata.version, '2');
    assert.equal(holder.rollback(), true);
    assert.equal(holder.current().metadata.version, '1');
    holder.dispose();
  });

  it('a candidate whose warm-up prediction is not finite is refused and the old model keeps serving', () => {
    const holder = createModelHolder(loaded('1'), { log: silentLogger });
    holder.remember([vectorWith({ coolant_temp: 3 })]);
    // Finite weights (3e38 fits in float32) but the squared error overflows to Infinity.
    const offer = holder.offer(loaded('2', 1, 3e38));
    assert.equal(offer.accepted, false);
    assert.match((offer as { reason: string }).reason, /non-finite score/);
    assert.equal(holder.current().metadata.version, '1');
    const [s] = scoreBatch(holder.current().model, holder.current().metadata, [vectorWith({ speed: 1 })]);
    assert.ok(Number.isFinite(s!.score), 'the old model still scores');
    holder.dispose();
  });

  it('a candidate of another input width is refused', () => {
    const holder = createModelHolder(loaded('1'), { log: silentLogger });
    const narrow: LoadedModel = { model: linearModel(1, 0, 4), metadata: metadataFor({ version: '2', features: ['a', 'b', 'c', 'd'] }), dir: '/x' };
    assert.match((holder.offer(narrow) as { reason: string }).reason, /input width 4/);
    holder.dispose();
  });

  it('no tensor leak across 100 swaps', () => {
    const holder = createModelHolder(loaded('0'), { log: silentLogger });
    holder.remember([vectorWith({ speed: 2 }), vectorWith({ coolant_temp: 1 })]);
    holder.offer(loaded('1'));
    const before = liveTensors();
    for (let i = 2; i < 102; i++) {
      assert.equal(holder.offer(loaded(String(i), 1, i % 3)).accepted, true);
      scoreBatch(holder.current().model, holder.current().metadata, [vectorWith({ speed: i })]);
    }
    assert.equal(liveTensors(), before, `tensors before ${before}, after ${liveTensors()}`);
    holder.dispose();
  });
});

describe('model watcher', () => {
  it('a new version directory is picked up; a broken one is refused once while the active one serves', async () => {
    await withTmpDir(async (root) => {
      const dirOf = (v: string): string => path.join(root, 'test-ae', v);
      await saveModelDir(dirOf('1'), linearModel(1, 0), metadataFor({ version: '1' }));
      const first = await (await import('@pitwall/model')).loadModelDir(dirOf('1'));
      const holder = createModelHolder(first, { log: silentLogger });
      const counters = createCounters(Object.values(METRICS));
      const watcher = createModelWatcher({ modelsDir: root, name: 'test-ae', holder, pollMs: 1000, log: silentLogger, counters });
      assert.equal(await watcher.check(), 'unchanged');

      await saveModelDir(dirOf('2'), linearModel(0.5, 0), metadataFor({ version: '2' }));
      assert.equal(await watcher.check(), 'swapped');
      assert.equal(holder.current().metadata.version, '2');

      // Version 3 has a metadata file that names the wrong features: refused, 2 keeps serving.
      await saveModelDir(dirOf('3'), linearModel(1, 0), metadataFor({ version: '3' }));
      const meta = metadataFor({ version: '3' });
      await writeFile(path.join(dirOf('3'), METADATA_JSON), JSON.stringify({ ...meta, features: [...meta.features].reverse() }));
      assert.equal(await watcher.check(), 'refused');
      assert.equal(await watcher.check(), 'unchanged', 'not retried until its files change');
      assert.equal(holder.current().metadata.version, '2');
      assert.equal(counters.get(METRICS.modelsRefused), 1);
      assert.equal(counters.get(METRICS.modelSwaps), 1);

      await mkdir(dirOf('4'), { recursive: true }); // still being copied: no files yet
      assert.equal(await watcher.check(), 'refused');
      holder.dispose();
    });
  });
});
