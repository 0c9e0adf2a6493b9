/** Shared test fixtures: tiny models with known weights and metadata that passes validation. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_NAMES, FEATURE_SPEC_ID } from '@pitwall/common';
import type { ModelMetadata } from './model-dir.js';
import { reconstruct, type ServableModel } from './servable.js';

export const D = FEATURE_NAMES.length;

/**
 * One dense layer, output = scale * input + bias for every feature (kernel = scale * identity).
 * scale 0 predicts the constant `bias`; scale 1 and bias 0 reconstructs perfectly.
 */
export function linearModel(scale: number, bias: number, width = D): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: width, inputShape: [width], activation: 'linear', name: 'dense_0' }));
  const kernel = tf.tidy(() => tf.eye(width).mul(scale));
  const b = tf.fill([width], bias);
  model.setWeights([kernel, b]);
  kernel.dispose();
  b.dispose();
  return model;
}

export function metadataFor(overrides: Partial<ModelMetadata> = {}): ModelMetadata {
  return {
    name: 'test-ae',
    version: '1',
    description: 'test model',
    featureSpec: FEATURE_SPEC_ID,
    features: [...FEATURE_NAMES],
    normalization: { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 1) },
    threshold: 1,
    thresholdMethod: 'fixed for tests',
    window: { sizeMs: 10_000, rateHz: 1 },
    trainingData: { source: 'test', cars: 0, seed: 0, fromTs: 0, toTs: 0, windows: 0 },
    trainingMetrics: { finalLoss: 0, valLoss: 0, healthyScoreP50: 0, healthyScoreP99: 0, healthyScoreMax: 0 },
    createdAt: '2025-01-01T00:00:00.000Z',
    groups: {},
    ...overrides,
  };
}

/** A raw feature vector: every feature of `sensor` set to its value, all others 0. */
export function vectorWith(values: Record<string, number>): Float32Array {
  const v = new Float32Array(D);
  FEATURE_NAMES.forEach((name, i) => {
    for (const [sensor, x] of Object.entries(values)) if (name.startsWith(`${sensor}_`)) v[i] = x;
  });
  return v;
}

/** A fresh temporary directory and its removal, for fixtures that outlive one test (before/after hooks). */
export async function tmpDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-scoring-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function withTmpDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const { dir, cleanup } = await tmpDir();
  try {
    return await fn(dir);
  } finally {
    await cleanup();
  }
}

/** The model's reconstruction of `rows`, as plain arrays; no tensor outlives the call. */
export function predictRows(model: ServableModel, rows: number[][]): number[][] {
  return tf.tidy(() => reconstruct(model, tf.tensor2d(rows)).arraySync() as number[][]);
}

/** The error `p` rejects with; fails the test when it resolves (disposing a model it resolved with). */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    const r = await p;
    if (r && typeof r === 'object' && 'model' in r) (r as { model: ServableModel }).model.dispose();
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a rejection');
}
