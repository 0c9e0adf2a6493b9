/**
 * Command line for training: `node services/scoring/dist/src/train.js --help`.
 * Writes models/<name>/<version>/ (model.json, weights.bin, metadata.json) and prints the
 * evaluation table; exits 2 when the evaluation fails, so a bad model is never taken for a good one.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { parseCsv } from '@pitwall/simulator';
import { defaultModelsDir } from './config.js';
import { resolveVersion } from './model-dir.js';
import { evaluationPasses, trainModel, type TrainOptions } from './training.js';

const HELP = `Train the Pitwall anomaly model (dense autoencoder over 10 s window features).

Usage: node services/scoring/dist/src/train.js [options]

  --cars N              healthy training cars                      (default 200)
  --hours H             hours of event time per car at 1 Hz         (default 2)
  --seed S              seed of the data, initializers and shuffle  (default 7)
  --epochs E            training epochs                             (default 12)
  --batch-size B                                                    (default 256)
  --learning-rate LR                                                (default 0.002)
  --hidden 48,12        encoder widths; the decoder mirrors them    (default 48,12)
  --holdout-cars N      held-out healthy cars for the threshold     (default 60)
  --holdout-hours H                                                 (default 1)
  --threshold-factor F  threshold = max held-out score x F          (default 1.5)
  --eval-healthy N      healthy cars in the evaluation fleet        (default 60)
  --eval-per-mode N     cars per failure mode in the evaluation     (default 5)
  --no-eval             skip the evaluation fleet
  --csv FILE            train on a CSV in the reference format instead of the simulator
  --out DIR             models directory                            (default: the repository's models/)
  --name NAME                                                       (default pitwall-ae)
  --version N           version directory; default: latest + 1
  --force               overwrite an existing version directory
  --help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cars: { type: 'string', default: '200' },
      hours: { type: 'string', default: '2' },
      seed: { type: 'string', default: '7' },
      epochs: { type: 'string', default: '12' },
      'batch-size': { type: 'string', default: '256' },
      'learning-rate': { type: 'string', default: '0.002' },
      hidden: { type: 'string', default: '48,12' },
      'holdout-cars': { type: 'string', default: '60' },
      'holdout-hours': { type: 'string', default: '1' },
      'threshold-factor': { type: 'string', default: '1.5' },
      'eval-healthy': { type: 'string', default: '60' },
      'eval-per-mode': { type: 'string', default: '5' },
      'no-eval': { type: 'boolean', default: false },
      csv: { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string', default: 'pitwall-ae' },
      version: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const num = (flag: string, raw: string, check: (n: number) => boolean = (n) => n > 0): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || !check(n)) throw new RangeError(`--${flag}: invalid value "${raw}"`);
    return n;
  };
  const int = (flag: string, raw: string, min = 1): number => num(flag, raw, (n) => Number.isInteger(n) && n >= min);
  const outDir = path.resolve(values.out ?? defaultModelsDir());
  const name = values.name;
  let version = values.version;
  if (version === undefined) {
    const latest = await resolveVersion(outDir, name, 'latest').catch(() => undefined);
    version = String(latest ? Number(latest.version) + 1 : 1);
  }
  if (!/^[1-9][0-9]*$/.test(version)) throw new RangeError(`--version: expected a positive integer, got "${version}"`);
  const target = path.join(outDir, name, version);
  if (!values.force && (await stat(target).catch(() => undefined))) {
    throw new RangeError(`${target} exists; pick another --version or pass --force`);
  }
  const hidden = values.hidden.split(',').map((x) => int('hidden', x.trim()));

  const opts: TrainOptions = {
    cars: int('cars', values.cars),
    hours: num('hours', values.hours),
    seed: int('seed', values.seed, 0),
    epochs: int('epochs', values.epochs),
    batchSize: int('batch-size', values['batch-size']),
    learningRate: num('learning-rate', values['learning-rate']),
    hidden,
    holdoutCars: int('holdout-cars', values['holdout-cars']),
    holdoutHours: num('holdout-hours', values['holdout-hours']),
    thresholdFactor: num('threshold-factor', values['threshold-factor']),
    evaluation: values['no-eval']
      ? false
      : {
          healthyCars: int('eval-healthy', values['eval-healthy']),
          carsPerMode: int('eval-per-mode', values['eval-per-mode']),
          warmupMs: 10 * 60_000,
          rampMs: 30_000,
          fullSeverityMs: 15 * 60_000,
        },
    outDir,
    name,
    version,
    onProgress: (line) => process.stdout.write(line + '\n'),
  };
  if (values.csv) opts.csv = { readings: parseCsv(await readFile(values.csv, 'utf8')), source: values.csv };

  // Deterministic training runs on the pure-JS backend; prod mode drops debug checks and the tfjs-node hint.
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const result = await trainModel(opts);
  result.model.dispose();
  if (result.evaluation && !evaluationPasses(result.evaluation)) {
    process.stderr.write('evaluation FAILED: a failing car was never detected at full severity, or a healthy window alerted\n');
    return 2;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`train: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
