/**
 * The committed model, models/pitwall-ae/1, against fleets it has never seen (seeds unused in
 * training, hold-out and the training-time evaluation).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_NAMES, silentLogger } from '@pitwall/common';
import { defaultModelsDir, type LoadedModel, loadModelDir, perSensorShare, resolveVersion, scoreBatch, selectBackend } from '@pitwall/model';
import { fleetWindows, TRAINING_EPOCH_TS, WINDOW_SIZE_MS } from '../src/training.js';

const SEED = 424_242;
let loaded: LoadedModel;

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
  loaded = await loadModelDir(path.join(defaultModelsDir(), 'pitwall-ae', '1'));
});
after(() => loaded.model.dispose());

describe('models/pitwall-ae/1', () => {
  it('is the latest version and describes itself', async () => {
    assert.equal((await resolveVersion(defaultModelsDir(), 'pitwall-ae', 'latest')).version, '1');
    const m = loaded.metadata;
    assert.equal(m.name, 'pitwall-ae');
    assert.equal(m.version, '1');
    assert.deepEqual(m.features, FEATURE_NAMES);
    assert.deepEqual(m.window, { sizeMs: WINDOW_SIZE_MS, rateHz: 1 });
    assert.ok(m.threshold > m.trainingMetrics.healthyScoreMax);
    assert.match(m.thresholdMethod, /held-out/);
  });

  it('scores healthy windows of a fresh fleet below the threshold', () => {
    const windows = fleetWindows({ cars: 20, seed: SEED, idPrefix: 'fresh', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 15 * 60_000 });
    assert.equal(windows.length, 20 * 90);
    const scores = scoreBatch(
      loaded.model,
      loaded.metadata,
      windows.map((w) => w.vector),
    ).map((s) => s.score);
    const above = scores.filter((s) => s > loaded.metadata.threshold);
    assert.deepEqual(above, [], `healthy windows above threshold ${loaded.metadata.threshold}`);
  });

  it('scores coolant_overheat windows at full severity above the threshold, with coolant as top contributor', () => {
    const onsetTs = TRAINING_EPOCH_TS + 5 * 60_000;
    const rampMs = 30_000;
    const failures = ['fresh-0001', 'fresh-0002', 'fresh-0003'].map((vehicleId) => ({ vehicleId, mode: 'coolant_overheat' as const, onsetTs, rampMs }));
    const windows = fleetWindows({ cars: 3, seed: SEED + 1, idPrefix: 'fresh', fromTs: TRAINING_EPOCH_TS, toTs: onsetTs + rampMs + 5 * 60_000, failures });
    const full = windows.filter((w) => w.windowStart >= onsetTs + rampMs);
    const before = windows.filter((w) => w.windowStart + WINDOW_SIZE_MS <= onsetTs);
    assert.equal(full.length, 3 * 30);
    const scored = scoreBatch(
      loaded.model,
      loaded.metadata,
      full.map((w) => w.vector),
    );
    const missed = scored.filter((s) => !(s.score > loaded.metadata.threshold));
    assert.equal(missed.length, 0, `${missed.length} of ${full.length} full-severity windows at or below the threshold`);
    for (const s of scored) {
      const top = Object.entries(perSensorShare(s)).sort((a, b) => b[1] - a[1])[0]!;
      assert.equal(top[0], 'coolant_temp');
    }
    const healthy = scoreBatch(
      loaded.model,
      loaded.metadata,
      before.map((w) => w.vector),
    );
    assert.ok(healthy.every((s) => s.score <= loaded.metadata.threshold));
  });

  it('scores the same on the wasm backend the service uses as on cpu', async () => {
    const windows = fleetWindows({ cars: 5, seed: SEED + 2, idPrefix: 'fresh', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 5 * 60_000 });
    const vectors = windows.map((w) => w.vector);
    const onCpu = scoreBatch(loaded.model, loaded.metadata, vectors);
    await selectBackend({ log: silentLogger, override: 'wasm' });
    try {
      const onWasm = scoreBatch(loaded.model, loaded.metadata, vectors);
      onCpu.forEach((s, i) => {
        const w = onWasm[i]!.score;
        assert.ok(Math.abs(w - s.score) <= 1e-4 * Math.max(1, s.score), `window ${i}: cpu ${s.score}, wasm ${w}`);
      });
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
