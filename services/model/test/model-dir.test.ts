import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { FEATURE_NAMES } from '@pitwall/common';
import { describeFeatureMismatch, describeWindowProblem, loadModelDir, METADATA_JSON, ModelDirError, MODEL_JSON, resolveVersion, saveModelDir, WEIGHTS_BIN } from '../src/model-dir.js';
import { D, linearModel, metadataFor, withTmpDir } from '@pitwall/model/testing';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

/** Writes a valid directory, then lets `mutate` break it, and returns loadModelDir's rejection. */
async function refusal(mutate: (dir: string) => Promise<void>, model: tf.LayersModel = linearModel(1, 0)): Promise<ModelDirError> {
  return withTmpDir(async (dir) => {
    await saveModelDir(dir, model, metadataFor());
    model.dispose();
    await mutate(dir);
    try {
      const loaded = await loadModelDir(dir);
      loaded.model.dispose();
    } catch (err) {
      assert.ok(err instanceof ModelDirError, `expected ModelDirError, got ${String(err)}`);
      assert.equal(err.reason, 'model.invalid');
      assert.equal(err.retriable, false);
      return err;
    }
    assert.fail('loadModelDir accepted a broken directory');
  });
}

const rewriteJson = async (file: string, edit: (json: Record<string, unknown>) => void): Promise<void> => {
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  await writeFile(file, JSON.stringify(json));
};

describe('model directory save -> load', () => {
  it('round-trips topology, weights and metadata: predictions are equal', async () => {
    await withTmpDir(async (dir) => {
      const model = tf.sequential();
      model.add(tf.layers.dense({ units: 5, inputShape: [D], activation: 'relu', name: 'enc' }));
      model.add(tf.layers.dense({ units: D, name: 'dec' }));
      // Known, distinct weights: a ramp over each tensor.
      model.setWeights(model.getWeights().map((w, k) => tf.tidy(() => tf.linspace(-1 - k, 1 + k, w.size).reshape(w.shape))));
      const meta = metadataFor({ version: '3', threshold: 0.25 });
      await saveModelDir(dir, model, meta);
      const files = JSON.parse(await readFile(path.join(dir, MODEL_JSON), 'utf8')) as { weightsManifest: { paths: string[] }[] };
      assert.deepEqual(files.weightsManifest[0]!.paths, [WEIGHTS_BIN]);
      assert.equal((await readFile(path.join(dir, WEIGHTS_BIN))).length, (D * 5 + 5 + 5 * D + D) * 4);

      const loaded = await loadModelDir(dir);
      assert.deepEqual(loaded.metadata, meta);
      const x = tf.randomUniform([4, D], -3, 3, 'float32', 11);
      const want = (model.predict(x) as tf.Tensor).arraySync();
      const got = (loaded.model.predict(x) as tf.Tensor).arraySync();
      assert.deepEqual(got, want);
      const expectedWeights = model.getWeights().map((w) => w.arraySync());
      assert.deepEqual(
        (loaded.model as tf.LayersModel).getWeights().map((w) => w.arraySync()),
        expectedWeights,
      );
      tf.dispose([x, model, loaded.model] as unknown as tf.Tensor[]);
    });
  });
});

describe('loadModelDir refusals', () => {
  it('metadata.json missing', async () => {
    const err = await refusal((dir) => rm(path.join(dir, METADATA_JSON)));
    assert.match(err.message, /metadata\.json is missing or unreadable/);
  });

  it('metadata.json not JSON', async () => {
    const err = await refusal((dir) => writeFile(path.join(dir, METADATA_JSON), '{"name": "x",'));
    assert.match(err.message, /metadata\.json is not valid JSON/);
  });

  it('features in another order: names the first differing position', async () => {
    const swapped = [...FEATURE_NAMES];
    [swapped[6], swapped[7]] = [swapped[7]!, swapped[6]!];
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.features = swapped)));
    assert.match(err.message, /features do not match pitwall-features-v1/);
    assert.match(err.message, /position 6: "intake_air_temp_std" where "intake_air_temp_mean" was expected/);
  });

  it('a feature missing: names it', async () => {
    const fewer = FEATURE_NAMES.filter((f) => f !== 'speed_slope');
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.features = fewer)));
    assert.match(err.message, /has 107 features, expected 108/);
    assert.match(err.message, /missing speed_slope/);
  });

  it('another feature spec id', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.featureSpec = 'pitwall-features-v0')));
    assert.match(err.message, /featureSpec is "pitwall-features-v0"/);
  });

  it('normalization std of 0', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void ((m.normalization as { std: number[] }).std[2] = 0)));
    assert.match(err.message, /normalization\.std of coolant_temp_min must be a positive number/);
  });

  it('a NaN weight', async () => {
    const err = await refusal(async (dir) => {
      const file = path.join(dir, WEIGHTS_BIN);
      const buf = await readFile(file);
      buf.writeFloatLE(Number.NaN, 4 * 17);
      await writeFile(file, buf);
    });
    assert.match(err.message, /weight dense_0\/kernel holds a non-finite value \(NaN\) at index 17/);
  });

  it('input width differs from the feature count', async () => {
    const err = await refusal(async () => {}, linearModel(1, 0, D - 1));
    assert.match(err.message, /model input shape is \[null,107\], the metadata lists 108 features/);
  });

  it('truncated weight file', async () => {
    const err = await refusal(async (dir) => {
      const file = path.join(dir, WEIGHTS_BIN);
      await writeFile(file, (await readFile(file)).subarray(0, 100));
    });
    assert.match(err.message, /weight files hold 100 bytes, the manifest describes/);
  });

  it('weight path escaping the directory', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, MODEL_JSON), (m) => void ((m.weightsManifest as { paths: string[] }[])[0]!.paths = ['../weights.bin'])));
    assert.match(err.message, /points outside the directory/);
  });
});

describe('metadata window', () => {
  const table: Array<{ name: string; window: unknown; problem?: RegExp }> = [
    { name: 'as written before minReadings (size and rate only)', window: { sizeMs: 10_000, rateHz: 1 } },
    { name: 'declaring minimum readings and coverage', window: { sizeMs: 120_000, rateHz: 0.1, minReadings: 10, minCoverage: 0.8 } },
    { name: 'missing', window: undefined, problem: /window must be/ },
    { name: 'size not an integer', window: { sizeMs: 10.5, rateHz: 1 }, problem: /sizeMs is 10\.5/ },
    { name: 'rate 0', window: { sizeMs: 10_000, rateHz: 0 }, problem: /rateHz is 0/ },
    { name: 'minReadings 0', window: { sizeMs: 10_000, rateHz: 1, minReadings: 0 }, problem: /minReadings is 0/ },
    { name: 'minCoverage above 1', window: { sizeMs: 10_000, rateHz: 1, minCoverage: 1.5 }, problem: /minCoverage is 1\.5/ },
  ];
  for (const t of table) {
    it(t.name, () => {
      const problem = describeWindowProblem(t.window);
      if (t.problem) assert.match(problem ?? '', t.problem);
      else assert.equal(problem, undefined);
    });
  }

  it('a directory with a bad window is refused, naming it', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.window = { sizeMs: 10_000, rateHz: -1 })));
    assert.match(err.message, /metadata\.json: window must be .*rateHz is -1/);
  });

  it('fleetProfile, when present, must be a name', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.fleetProfile = 7)));
    assert.match(err.message, /fleetProfile must be a fleet profile name/);
  });

  it('a drift reference, when present, must have one entry per feature', async () => {
    const err = await refusal((dir) => rewriteJson(path.join(dir, METADATA_JSON), (m) => void (m.drift = { bins: 10, method: 'x', features: [] })));
    assert.match(err.message, /metadata\.json: drift\.features must have one entry per feature/);
  });
});

describe('describeFeatureMismatch', () => {
  const table: Array<{ name: string; actual: string[]; expected: string[]; want: RegExp | undefined }> = [
    { name: 'equal', actual: ['a', 'b'], expected: ['a', 'b'], want: undefined },
    { name: 'swapped', actual: ['b', 'a'], expected: ['a', 'b'], want: /position 0: "b" where "a"/ },
    { name: 'extra', actual: ['a', 'b', 'c'], expected: ['a', 'b'], want: /has 3 features, expected 2; unknown c/ },
    { name: 'renamed', actual: ['a', 'x'], expected: ['a', 'b'], want: /missing b; unknown x/ },
  ];
  for (const t of table) {
    it(t.name, () => {
      const got = describeFeatureMismatch(t.actual, t.expected);
      if (t.want === undefined) assert.equal(got, undefined);
      else assert.match(got ?? '', t.want);
    });
  }
});

describe('resolveVersion', () => {
  it('latest is the highest numeric directory, in numeric order', async () => {
    await withTmpDir(async (root) => {
      for (const v of ['1', '2', '10', 'draft']) await mkdir(path.join(root, 'm', v), { recursive: true });
      await writeFile(path.join(root, 'm', '11'), 'a file, not a version');
      assert.deepEqual(await resolveVersion(root, 'm', 'latest'), { version: '10', dir: path.join(root, 'm', '10') });
      assert.deepEqual(await resolveVersion(root, 'm', '2'), { version: '2', dir: path.join(root, 'm', '2') });
    });
  });

  it('refuses unknown versions, names and non-numeric versions', async () => {
    await withTmpDir(async (root) => {
      await mkdir(path.join(root, 'm', 'draft'), { recursive: true });
      await assert.rejects(resolveVersion(root, 'm', 'latest'), /model m has no numeric version directories/);
      await assert.rejects(resolveVersion(root, 'm', '4'), /model m has no version 4/);
      await assert.rejects(resolveVersion(root, 'nope', 'latest'), /no model named nope/);
      await assert.rejects(resolveVersion(root, 'm', 'v1'), /version must be a number or "latest"/);
    });
  });
});

describe('metadata declaring its input (model-input.ts)', () => {
  const features = ['speed_max', 'coolant_temp_mean', 'tire_pressure_1_1_min'];
  const windowInput = { kind: 'window', features, scaling: { method: 'zscore', mean: [50, 90, 230], std: [10, 5, 20] } };
  const readingInput = { kind: 'reading', sensors: ['coolant_temp', 'speed'], scaling: { method: 'minmax', min: [0, 0], max: [200, 100], range: [-1, 1] } };
  const declared = (input: unknown, width: number, edit: (m: Record<string, unknown>) => void = () => {}): Promise<unknown> =>
    withTmpDir(async (dir) => {
      const meta: Record<string, unknown> = { ...metadataFor(), input };
      delete meta.features;
      delete meta.normalization;
      edit(meta);
      const model = linearModel(1, 0, width);
      await saveModelDir(dir, model, meta as never);
      model.dispose();
      const loaded = await loadModelDir(dir).catch((err: unknown) => err);
      if (!(loaded instanceof Error)) (loaded as { model: tf.LayersModel }).model.dispose();
      return loaded instanceof Error ? loaded : (loaded as { metadata: unknown }).metadata;
    });

  it('a subset of the window features, in its own order: features and the affine step filled in', async () => {
    const meta = (await declared(windowInput, 3)) as { features: string[]; normalization: { mean: number[]; std: number[] } };
    assert.deepEqual(meta.features, features);
    assert.deepEqual([meta.normalization.mean, meta.normalization.std], [windowInput.scaling.mean, windowInput.scaling.std]);
  });

  it('a reading of named sensors, min-max to [-1, 1]: (x - offset) / divisor maps min to -1 and max to 1', async () => {
    const meta = (await declared(readingInput, 2)) as { features: string[]; normalization: { mean: number[]; std: number[] } };
    assert.deepEqual(meta.features, ['coolant_temp', 'speed']);
    const scaled = (x: number, j: number): number => (x - meta.normalization.mean[j]!) / meta.normalization.std[j]!;
    assert.deepEqual([scaled(0, 0), scaled(200, 0), scaled(100, 0), scaled(0, 1), scaled(100, 1)], [-1, 1, 0, -1, 1]);
  });

  it('refusals name what is wrong', async () => {
    const cases: Array<[unknown, number, RegExp, ((m: Record<string, unknown>) => void)?]> = [
      [{ ...windowInput, features: ['speed_max', 'coolant_temp_median', 'tire_pressure_1_1_min'] }, 3, /input\.features names unknown features: coolant_temp_median/],
      [{ ...readingInput, sensors: ['coolant_temp', 'oil_pressure'] }, 2, /input\.sensors names unknown sensors: oil_pressure/],
      [{ ...readingInput, sensors: ['speed', 'speed'] }, 2, /input\.sensors lists speed twice/],
      [{ ...windowInput, scaling: { ...windowInput.scaling, std: [1, 2] } }, 3, /input\.scaling\.std has 2 values for 3 inputs/],
      [{ ...readingInput, scaling: { ...readingInput.scaling, max: [0, 100] } }, 2, /input\.scaling min == max \(0\) for coolant_temp/],
      [{ ...readingInput, scaling: { ...readingInput.scaling, units: 'cardata-v1' } }, 2, /scaling\.units is "cardata-v1": a served model's scaling is in Pitwall's units/],
      [{ ...readingInput, kind: 'trip' }, 2, /input\.kind is "trip"/],
      [readingInput, 3, /model input shape is \[null,3\], the metadata lists 2 declared sensor readings/],
      [readingInput, 2, /features and input both given/, (m) => (m.features = ['coolant_temp', 'speed'])],
    ];
    for (const [input, width, pattern, edit] of cases) {
      const err = await declared(input, width, edit);
      assert.ok(err instanceof ModelDirError, `${String(err)} for ${JSON.stringify(input)}`);
      assert.match(err.message, pattern);
    }
  });
});
