/**
 * Command line for importing a model trained elsewhere:
 * `npm run import-model -- --keras model.keras --name pitwall-ae --version 3 --metadata meta.json`.
 * See model-import.ts for what is checked and written.
 */
import { runCliIfMain } from '@pitwall/common';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { defaultModelsDir } from '@pitwall/model';
import { importModel } from '../src/model-import.js';

const HELP = `Import a Keras model (.keras or .h5) or a tensorflowjs_converter output as a Pitwall model version.

Usage: npm run import-model -- (--keras FILE | --tfjs MODEL_JSON) --name NAME --version N --metadata FILE [--input FILE] [options]

  --keras FILE       Keras model file, told apart by its content: a .keras archive (Keras 3,
                     tf_keras 2.12+) or a whole-model HDF5 file (model.save("model.h5"), Keras 2
                     and tf.keras 2.x, Keras 3)
  --h5 FILE          the same as --keras
  --tfjs FILE        model.json of a tensorflowjs_converter output (weight shards next to it):
                     layers format (a converted Keras model) or graph format (a converted
                     SavedModel: one float32 input [-1, 108], one output of the same shape;
                     graphs that need executeAsync, i.e. control flow, are refused)
  --name NAME        model name (directory under the models folder)
  --version N        version directory, a positive integer
  --metadata FILE    JSON: features, normalization {mean, std}, threshold (required);
                     description, thresholdMethod, window, fleetProfile, trainingData, ...
                     (optional); or, for a model not made on the 108 window features,
                     threshold and input (docs/models.md, "Models of other inputs")
  --input FILE       JSON: the input declaration, {"kind": "reading", "sensors": [...],
                     "scaling": {"method": "minmax", "min", "max", "range", "units"?}} or
                     {"kind": "window", "features": [...], "scaling": {"method": "zscore",
                     "mean", "std", "units"?}}; the same as an "input" key in --metadata
  --models-dir DIR   models folder (default: the repository's models/)
  --force            replace an existing version directory
  --help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      keras: { type: 'string' },
      h5: { type: 'string' },
      tfjs: { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      metadata: { type: 'string' },
      input: { type: 'string' },
      'models-dir': { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const given = (['keras', 'h5', 'tfjs'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new RangeError('give exactly one of --keras FILE (or --h5 FILE) or --tfjs MODEL_JSON (see --help)');
  const missing = (['name', 'version', 'metadata'] as const).filter((k) => values[k] === undefined).map((k) => `--${k}`);
  if (missing.length) throw new RangeError(`missing ${missing.join(', ')} (see --help)`);
  let metadata: unknown;
  try {
    metadata = JSON.parse(await readFile(values.metadata!, 'utf8'));
  } catch (cause) {
    throw new Error(`--metadata ${values.metadata}: ${(cause as Error).message}`, { cause });
  }
  if (values.input !== undefined) {
    if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new Error(`--metadata ${values.metadata}: must be a JSON object`);
    if ((metadata as Record<string, unknown>).input !== undefined) throw new RangeError(`--input ${values.input} and an "input" key in --metadata ${values.metadata}: give one`);
    try {
      (metadata as Record<string, unknown>).input = JSON.parse(await readFile(values.input, 'utf8'));
    } catch (cause) {
      throw new Error(`--input ${values.input}: ${(cause as Error).message}`, { cause });
    }
  }
  // The pure-JS backend needs nothing native; importing is not performance sensitive.
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const result = await importModel({
    format: given[0] === 'tfjs' ? 'tfjs' : 'keras',
    file: path.resolve(values[given[0]!]!),
    name: values.name!,
    version: values.version!,
    metadata,
    metadataSource: values.metadata!,
    modelsDir: path.resolve(values['models-dir'] ?? defaultModelsDir()),
    force: values.force,
  });
  process.stdout.write(
    `imported ${result.metadata.name}/${result.metadata.version} into ${result.dir} ` +
      `(${result.metadata.features.length} ${result.metadata.input?.kind === 'reading' ? 'sensor readings' : 'features'}, threshold ${result.metadata.threshold})\n`,
  );
  return 0;
}

runCliIfMain(import.meta.url, 'import-model', main);
