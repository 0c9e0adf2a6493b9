/**
 * Keras files written by the real libraries (test/fixtures/keras/, made by make_fixtures.py there:
 * tf_keras 2.19.0, keras 3.15.1 and keras 2.12.0 on TensorFlow), loaded by the importer and
 * compared with the predictions of the library that wrote them.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { FEATURE_NAMES, loadFleetProfile, toCanonical } from '@pitwall/common';
import { loadModelDir, perSensorShare, scoreBatch } from '@pitwall/model';
import { predictRows, rejection, withTmpDir } from '@pitwall/model/testing';
import { archiveWeightPaths, loadKerasModel, toSnakeCase } from '../src/keras-archive.js';
import { ModelImportError, type KerasLayerConfig } from '../src/keras-model.js';
import { importModel } from '../src/model-import.js';
import { crc32, zipEntries, zipRead } from '../src/zip.js';

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

const FIXTURE_FILES: Array<{ name: string; format: 'keras-h5' | 'keras'; kerasVersion: string; library: string }> = [
  { name: 'keras2-functional.h5', format: 'keras-h5', kerasVersion: '2.19.0', library: 'tf_keras' },
  { name: 'tf1-flat.h5', format: 'keras-h5', kerasVersion: '2.2.4-tf', library: 'tf_keras' },
  { name: 'keras3-functional.h5', format: 'keras-h5', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'keras3-functional.keras', format: 'keras', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'keras3-sequential.keras', format: 'keras', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'keras3-sequential-deflated.keras', format: 'keras', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'tf-keras-functional.keras', format: 'keras', kerasVersion: '2.19.0', library: 'tf_keras' },
  { name: 'keras212-functional.keras', format: 'keras', kerasVersion: '2.12.0', library: 'keras' },
  { name: 'keras3-pitwall-ae.keras', format: 'keras', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'keras3-cardata-reading.h5', format: 'keras-h5', kerasVersion: '3.15.1', library: 'keras' },
  { name: 'keras3-cardata-reading.keras', format: 'keras', kerasVersion: '3.15.1', library: 'keras' },
];

describe('Keras files written by the real libraries', () => {
  for (const f of FIXTURE_FILES) {
    it(`${f.name}: predicts what ${f.library} predicted`, async () => {
      const want = await expected(f.name);
      const { model, format, kerasVersion } = await loadKerasModel(fixture(f.name));
      try {
        assert.equal(format, f.format);
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
    // The archives' weights: Keras 2.12 under _layer_checkpoint_dependencies, later ones under layers.
    const roots = async (name: string): Promise<string[]> => {
      const buf = await readFile(fixture(name));
      const fail = (m: string): Error => new Error(m);
      const entries = zipEntries(buf, fail);
      assert.deepEqual([...entries.keys()].sort(), ['config.json', 'metadata.json', 'model.weights.h5']);
      return withTmpDir(async (dir) => {
        const tmp = path.join(dir, 'w.h5');
        await writeFile(tmp, zipRead(buf, entries.get('model.weights.h5')!, fail));
        const h5 = new h5wasm.File(tmp, 'r');
        try {
          return h5.keys().sort();
        } finally {
          h5.close();
        }
      });
    };
    assert.deepEqual(await roots('keras212-functional.keras'), ['_layer_checkpoint_dependencies', 'vars']);
    assert.deepEqual(await roots('keras3-functional.keras'), ['layers', 'vars']);
    assert.deepEqual(await roots('tf-keras-functional.keras'), ['layers', 'vars']);
  });

  it('tells a .keras archive from an .h5 by content, not by name', async () => {
    // Keras 2.12 writes HDF5 to a .keras name unless save_format="keras_v3" is given.
    await withTmpDir(async (dir) => {
      const h5AsKeras = path.join(dir, 'model.keras');
      await copyFile(fixture('keras2-functional.h5'), h5AsKeras);
      const archiveAsH5 = path.join(dir, 'model.h5');
      await copyFile(fixture('keras3-functional.keras'), archiveAsH5);
      for (const [file, format] of [
        [h5AsKeras, 'keras-h5'],
        [archiveAsH5, 'keras'],
      ] as const) {
        const k = await loadKerasModel(file);
        k.model.dispose();
        assert.equal(k.format, format);
      }
      const text = path.join(dir, 'notes.keras');
      await writeFile(text, 'not a model');
      assert.match((await rejection(loadKerasModel(text))).message, /neither a \.keras archive \(zip\) nor a Keras HDF5 file/);
    });
  });
});

describe('.keras weight groups', () => {
  const layer = (class_name: string, name: string): KerasLayerConfig => ({ class_name, config: { name } });
  const layers = [layer('InputLayer', 'in'), layer('Dense', 'enc'), layer('BatchNormalization', 'norm'), layer('Dropout', 'drop'), layer('Dense', 'mid'), layer('Dense', 'dec')];

  it('are named after the class, counted in layer order (Keras 2.13+ and 3)', () => {
    assert.deepEqual(Object.fromEntries(archiveWeightPaths(layers, 'layers', false)), {
      in: 'layers/input_layer',
      enc: 'layers/dense',
      norm: 'layers/batch_normalization',
      drop: 'layers/dropout',
      mid: 'layers/dense_1',
      dec: 'layers/dense_2',
    });
  });

  it('count each layer with weights twice in Keras 2.12', () => {
    const paths = archiveWeightPaths(layers, '_layer_checkpoint_dependencies', true);
    assert.deepEqual(
      [paths.get('enc'), paths.get('mid'), paths.get('dec'), paths.get('drop')],
      ['_layer_checkpoint_dependencies/dense', '_layer_checkpoint_dependencies/dense_2', '_layer_checkpoint_dependencies/dense_4', '_layer_checkpoint_dependencies/dropout'],
    );
  });

  it('use Keras snake_case class names', () => {
    assert.deepEqual(['Dense', 'BatchNormalization', 'LeakyReLU', 'InputLayer', 'Add'].map(toSnakeCase), ['dense', 'batch_normalization', 'leaky_re_lu', 'input_layer', 'add']);
  });
});

describe('.keras archives the importer refuses', () => {
  /**
   * A copy of a fixture with one stored zip entry's bytes changed in place (same length); its CRC-32
   * is updated in the local and central headers unless `keepCrc`.
   */
  async function edited(dir: string, name: string, entry: string, edit: (text: string) => string, keepCrc = false): Promise<string> {
    const buf = await readFile(fixture(name));
    const e = zipEntries(buf, (m) => new Error(m)).get(entry)!;
    assert.equal(e.method, 0, 'a stored entry');
    const start = e.offset + 30 + buf.readUInt16LE(e.offset + 26) + buf.readUInt16LE(e.offset + 28);
    const data = Buffer.from(edit(buf.toString('latin1', start, start + e.size)), 'latin1');
    assert.equal(data.length, e.size);
    data.copy(buf, start);
    if (!keepCrc) {
      buf.writeUInt32LE(crc32(data), e.offset + 14);
      const central = Buffer.from('PK\x01\x02', 'latin1');
      for (let at = buf.indexOf(central); at >= 0; at = buf.indexOf(central, at + 4)) {
        if (buf.toString('latin1', at + 46, at + 46 + buf.readUInt16LE(at + 28)) === entry) buf.writeUInt32LE(crc32(data), at + 16);
      }
    }
    const out = path.join(dir, name);
    await writeFile(out, buf);
    return out;
  }

  it('an entry that inflates beyond its declared size (a zip bomb) is refused without inflating it all', () => {
    // One deflated entry: 64 MiB of zeros (about 64 KB compressed) that declares 1 KiB.
    const body = deflateRawSync(Buffer.alloc(64 * 2 ** 20));
    const name = Buffer.from('config.json');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(1024, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(1024, 24);
    central.writeUInt16LE(name.length, 28);
    const cdOffset = local.length + name.length + body.length;
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length + name.length, 12);
    end.writeUInt32LE(cdOffset, 16);
    const zip = Buffer.concat([local, name, body, central, name, end]);
    const fail = (m: string): Error => new Error(m);
    const e = zipEntries(zip, fail).get('config.json')!;
    assert.equal(e.size, 1024);
    assert.throws(() => zipRead(zip, e, fail), /zip entry config\.json inflates to more than the 1024 bytes it declares/);
    assert.throws(() => zipRead(zip, { ...e, size: 2 ** 32 }, fail), /declares 4294967296 bytes, more than the 2147483648/);
  });

  it('a corrupt entry (CRC-32 mismatch)', async () => {
    await withTmpDir(async (dir) => {
      const file = await edited(dir, 'keras3-sequential.keras', 'config.json', (t) => t.replace('"relu"', '"ReLU"'), true);
      const err = await rejection(loadKerasModel(file));
      assert.ok(err instanceof ModelImportError, String(err));
      assert.match(err.message, /zip entry config\.json is corrupt/);
    });
  });

  it('an archive without model weights, and a truncated file', async () => {
    await withTmpDir(async (dir) => {
      const buf = await readFile(fixture('keras3-sequential.keras'));
      const file = path.join(dir, 'renamed.keras');
      // The entry's name is in its local header and in the central directory.
      await writeFile(file, Buffer.from(buf.toString('latin1').replaceAll('model.weights.h5', 'other.weights.h5'), 'latin1'));
      assert.match((await rejection(loadKerasModel(file))).message, /the archive has no model\.weights\.h5 \(it holds metadata\.json, config\.json, other\.weights\.h5\)/);
      await writeFile(file, buf.subarray(0, 1000));
      assert.match((await rejection(loadKerasModel(file))).message, /not a valid zip archive: no end of central directory record/);
    });
  });

  it('a config whose layer order does not match the stored weights', async () => {
    await withTmpDir(async (dir) => {
      // Swapping the names of two Dense layers of the same shape would go unnoticed by the shapes;
      // Keras 3 records each weights group's layer name, which the importer checks.
      const swap = (t: string): string => t.replace('"name": "enc"', '"name": "XXX"').replace('"name": "mid"', '"name": "enc"').replace('"name": "XXX"', '"name": "mid"');
      const file = await edited(dir, 'keras3-sequential.keras', 'config.json', swap);
      const err = await rejection(loadKerasModel(file));
      assert.ok(err instanceof ModelImportError, String(err));
      assert.match(err.message, /model\.weights\.h5: layers\/dense\/vars holds the weights of layer enc, not of layer mid/);
    });
  });
});

describe('importing Keras files as Pitwall model versions', () => {
  const metadata = { features: [...FEATURE_NAMES], normalization: { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 1) }, threshold: 0.5 };

  it('a .keras archive becomes a version directory that predicts like Keras', async () => {
    const want = await expected('keras3-pitwall-ae.keras');
    await withTmpDir(async (dir) => {
      const r = await importModel({ format: 'keras', file: fixture('keras3-pitwall-ae.keras'), name: 'k3', version: '1', metadata, modelsDir: dir, now: () => Date.UTC(2026, 0, 1) });
      const loaded = await loadModelDir(r.dir);
      try {
        assert.deepEqual(loaded.metadata.imported_from, { format: 'keras', file: 'keras3-pitwall-ae.keras', keras_version: '3.15.1', backend: null, imported_at: '2026-01-01T00:00:00.000Z' });
        assertClose(predictRows(loaded.model, want.inputs), want.outputs);
      } finally {
        loaded.model.dispose();
      }
    });
  });

  it('a model made for other data is refused with its width and the width Pitwall needs', async () => {
    await withTmpDir(async (dir) => {
      for (const name of ['tf1-flat.h5', 'keras3-functional.keras']) {
        const err = await rejection(importModel({ format: 'keras', file: fixture(name), name: 'other', version: '1', metadata, modelsDir: dir }));
        assert.ok(err instanceof ModelImportError, String(err));
        assert.match(
          err.message,
          new RegExp(`${name.replace('.', '\\.')}: the model takes 6 values per row \\(input \\[null,6\\]\\) and returns 6 \\(output \\[null,6\\]\\); a Pitwall model takes the 108 features of`),
        );
      }
    });
  });
});

describe('a per-reading CarData model made with Keras (keras3-cardata-reading.*)', () => {
  interface ReadingExpected extends Expected {
    sensors: string[];
    raw: number[][];
    scores: number[];
  }
  const sidecar = async (): Promise<Record<string, unknown>> => JSON.parse(await readFile(fixture('keras3-cardata-reading.metadata.json'), 'utf8')) as Record<string, unknown>;
  const profile = loadFleetProfile('cardata-v1', 'test');

  for (const file of ['keras3-cardata-reading.h5', 'keras3-cardata-reading.keras']) {
    it(`${file}: imported with its input declaration, scores raw readings as Keras did (1e-5)`, async () => {
      const want = (await expected(file)) as ReadingExpected;
      await withTmpDir(async (dir) => {
        const r = await importModel({ format: 'keras', file: fixture(file), name: 'cardata-reading-ae', version: '1', metadata: await sidecar(), metadataSource: 'sidecar', modelsDir: dir });
        const loaded = await loadModelDir(r.dir);
        try {
          const input = loaded.metadata.input!;
          assert.equal(input.kind, 'reading');
          assert.deepEqual(input.sensors, want.sensors);
          assert.equal(loaded.metadata.fleetProfile, 'cardata-v1');
          // Converted once, at import, into Pitwall's units: psi -> kPa, fraction -> %.
          const tire = want.sensors.indexOf('tire_pressure_1_1');
          assert.ok(Math.abs(input.scaling.min![tire]! - 20 * 6.894757293168361) < 1e-9 && Math.abs(input.scaling.max![tire]! - 35 * 6.894757293168361) < 1e-9);
          assert.deepEqual([input.scaling.min![1], input.scaling.max![1]], [0, 100]);
          assert.equal(input.scaling.units, undefined);
          assert.equal((input.convertedFrom as { units: string }).units, 'cardata-v1');
          // The forward pass on Keras's own scaled rows.
          assertClose(predictRows(loaded.model, want.inputs), want.outputs);
          // Raw readings in the fleet's units, converted as ingest converts them (without its
          // rounding of integer sensors, which Keras did not see), scaled by Pitwall: the same error.
          const vectors = want.raw.map((row) =>
            Float32Array.from(row, (v, j) =>
              toCanonical(
                profile.sensors.find((m) => m.sensor === want.sensors[j])!,
                v,
              ),
            ),
          );
          const scored = scoreBatch(loaded.model, loaded.metadata, vectors);
          scored.forEach((s, i) => assert.ok(Math.abs(s.score - want.scores[i]!) <= 1e-5 * Math.max(1, want.scores[i]!), `row ${i}: ${s.score} vs ${want.scores[i]}`));
          // Each input is one sensor: the shares name only the model's sensors.
          const shared = Object.entries(perSensorShare(scored[0]!))
            .filter(([, v]) => v > 0)
            .map(([k]) => k);
          assert.ok(shared.length > 0 && shared.every((k) => want.sensors.includes(k)), shared.join());
          // The last row is the file's worst reading: above the threshold; the first is not.
          assert.ok(scored.at(-1)!.score > loaded.metadata.threshold && scored[0]!.score < loaded.metadata.threshold);
        } finally {
          loaded.model.dispose();
        }
      });
    });
  }

  const refusal = async (edit: (meta: Record<string, unknown>, input: Record<string, unknown>, scaling: Record<string, unknown>) => void, pattern: RegExp): Promise<void> => {
    const meta = await sidecar();
    const input = meta.input as Record<string, unknown>;
    edit(meta, input, input.scaling as Record<string, unknown>);
    await withTmpDir(async (dir) => {
      const err = await rejection(
        importModel({ format: 'keras', file: fixture('keras3-cardata-reading.h5'), name: 'cardata-reading-ae', version: '1', metadata: meta, metadataSource: 'meta.json', modelsDir: dir }),
      );
      assert.ok(err instanceof ModelImportError || err.name === 'PitwallError' || /model directory/.test(err.message), String(err));
      assert.match(err.message, pattern);
    });
  };

  it('refuses an input the fleet does not send, naming it and the profile', async () => {
    await refusal(
      (_m, input) => ((input.sensors as string[])[3] = 'oil_pressure'),
      /the model asks for "oil_pressure", which fleet profile "cardata-v1" does not send \(as sensor readings; it sends: coolant_temp, /,
    );
  });

  it('refuses a declaration whose length is not the model width, naming both', async () => {
    await refusal((_m, input, scaling) => {
      for (const a of [input.sensors, scaling.min, scaling.max] as unknown[][]) a.pop();
    }, /the model takes 13 values per row \(input \[null,13\]\) and returns 13 \(output \[null,13\]\), but its metadata input declares 12 sensor readings/);
  });

  it('refuses scaling arrays of the wrong length and min == max, naming the variable', async () => {
    await refusal((_m, _i, scaling) => (scaling.max as number[]).pop(), /input\.scaling\.max has 12 values for 13 inputs/);
    await refusal((_m, _i, scaling) => ((scaling.max as number[])[0] = 15), /input\.scaling min == max \(15\) for intake_air_temp/);
    await refusal((_m, _i, scaling) => delete scaling.range, /input\.scaling\.range must be \[lo, hi\]/);
  });

  it('refuses scaling units of another fleet than the model was made for', async () => {
    await refusal((meta) => (meta.fleetProfile = 'pitwall'), /input\.scaling\.units is "cardata-v1" but fleetProfile is "pitwall"/);
  });

  it('without an input declaration a 13-wide model is still refused naming the widths', async () => {
    await refusal((meta) => {
      delete meta.input;
      Object.assign(meta, { features: [...FEATURE_NAMES], normalization: { mean: FEATURE_NAMES.map(() => 0), std: FEATURE_NAMES.map(() => 1) } });
    }, /the model takes 13 values per row \(input \[null,13\]\) and returns 13 \(output \[null,13\]\); a Pitwall model takes the 108 features/);
  });
});

describe('a Keras model of a subset of the window features (keras3-sequential.keras, 6 wide)', () => {
  // Names in the fleet's fields and units (cardata-v1: tires in psi, battery as a fraction).
  const features = ['tire_pressure_1_1_mean', 'tire_pressure_1_1_std', 'battery_percentage_min', 'coolant_temp_slope', 'speed_max', 'battery_percentage_last'];
  const input = { kind: 'window', features, scaling: { method: 'zscore', units: 'cardata-v1', mean: [32, 0.5, 0.6, 0.01, 40, 0.7], std: [1.5, 0.2, 0.1, 0.02, 12, 0.1] } };

  it('is imported with its declaration, converted into Pitwall units, and predicts what Keras predicted', async () => {
    const want = await expected('keras3-sequential.keras');
    await withTmpDir(async (dir) => {
      const r = await importModel({ format: 'keras', file: fixture('keras3-sequential.keras'), name: 'subset', version: '1', metadata: { threshold: 1, input }, modelsDir: dir });
      const loaded = await loadModelDir(r.dir);
      try {
        const psi = 6.894757293168361;
        assert.deepEqual(loaded.metadata.features, features);
        assert.equal(loaded.metadata.fleetProfile, 'cardata-v1');
        const { mean, std } = loaded.metadata.input!.scaling;
        // A mean (and min, max, last) takes the unit's scale and offset; std and slope its scale only.
        const close = (a: readonly number[], b: readonly number[]): boolean => a.every((v, i) => Math.abs(v - b[i]!) < 1e-9);
        assert.ok(close(mean!, [32 * psi, 0.5 * psi, 60, 0.01, 40, 70]), JSON.stringify(mean));
        assert.ok(close(std!, [1.5 * psi, 0.2 * psi, 10, 0.02, 12, 10]), JSON.stringify(std));
        assertClose(predictRows(loaded.model, want.inputs), want.outputs);
        // Scores of raw features: (x - mean) / std, here with the Keras inputs mapped back to raw values.
        const raw = want.inputs.map((row) => Float32Array.from(row, (z, j) => z * std![j]! + mean![j]!));
        const scored = scoreBatch(loaded.model, loaded.metadata, raw);
        want.outputs.forEach((out, i) => {
          const mse = out.reduce((a, o, j) => a + (o - want.inputs[i]![j]!) ** 2, 0) / out.length;
          assert.ok(Math.abs(scored[i]!.score - mse) <= 1e-5 * Math.max(1, mse), `row ${i}: ${scored[i]!.score} vs ${mse}`);
        });
      } finally {
        loaded.model.dispose();
      }
    });
  });

  it('a feature of a sensor the fleet does not send, or an unknown aggregate, is refused naming it', async () => {
    await withTmpDir(async (dir) => {
      for (const [name, pattern] of [
        ['oil_pressure_mean', /the model asks for "oil_pressure_mean", which fleet profile "cardata-v1" does not send \(as window features/],
        ['speed_median', /the model asks for "speed_median", which fleet profile "cardata-v1" does not send/],
      ] as const) {
        const bad = { ...input, features: [...features.slice(0, 5), name] };
        const err = await rejection(importModel({ format: 'keras', file: fixture('keras3-sequential.keras'), name: 'subset', version: '1', metadata: { threshold: 1, input: bad }, modelsDir: dir }));
        assert.ok(err instanceof ModelImportError, String(err));
        assert.match(err.message, pattern);
      }
    });
  });
});
