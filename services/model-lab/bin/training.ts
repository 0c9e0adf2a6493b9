/**
 * Command line for training: `npm run train -- --help`. Data from the
 * simulator (default), a CSV (--csv) or a range of Kafka telemetry history (--from-kafka).
 * Writes models/<name>/<version>/ (model.json, weights.bin, metadata.json) and prints the
 * evaluation table; exits 2 when the evaluation fails, so a bad model is never taken for a good one.
 */
import { loadFleetProfile, runCliIfMain } from '@pitwall/common';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { parseCsv } from '@pitwall/simulator';
import { defaultModelsDir, METADATA_JSON, resolveVersion, validateMetadata } from '@pitwall/model';
import { kafkaTrainingWindows } from '../src/kafka-training.js';
import { estimateRateHz, evaluationPasses, readingsInProfile, simulatorDriftReference, trainModel, type TrainOptions } from '../src/training.js';

const HELP = `Train the Pitwall anomaly model (dense autoencoder over window features; 10 s windows unless --window).

Usage: npm run train -- [options]

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
  --profile NAME        the CSV's fleet profile (schemas/fleet-profiles/NAME.json, or a file
                        path): readings are converted with ingest's own conversion and the name is
                        recorded as the model's fleetProfile                     (default pitwall)
  --window S            CSV: window size in seconds the model is trained on and declares; scoring
                        routes windows of this size to it (windowing's WINDOW_SIZES_MS must list
                        it). Another window than 10 s skips the evaluation fleet    (default 10)
  --rate HZ             CSV: the fleet's readings per second, declared with the window
                        (default: estimated from the CSV, 1 / the median interval of a car)
  --from-kafka          train on telemetry history read from Kafka instead of the simulator
                        (every fifth car is held out for the threshold, as with --csv; --cars and
                        --hours are then unused). Reads [--from, --to) without side effects: no
                        commits, no produced records, no schema registered.
  --topic T             telemetry topic             (default $TOPIC_TELEMETRY or vehicle.telemetry)
  --from B              range start, inclusive      (default earliest)
  --to B                range end, exclusive        (default latest: the end offset at the start)
                        B: earliest | latest | ISO time (2026-01-01T10:00:00Z) | ts:<epoch ms> |
                           offset:<n> (every partition) | <partition>:<offset>,... (only those)
  --min-coverage F      Kafka: keep windows with >= window x rate x F readings; every source:
                        declared in the metadata's window as minCoverage and minReadings, which
                        scoring then requires of a window                            (default 0.8)
  --brokers H:P,...     default $KAFKA_BROKERS or 127.0.0.1:9092
  --registry URL        default $SCHEMA_REGISTRY_URL or http://127.0.0.1:8081/apis/ccompat/v7
  --timeout S           give up reading after S seconds                          (default 300)
  --out DIR             models directory                            (default: the repository's models/)
  --name NAME                                                       (default pitwall-ae)
  --version N           version directory; default: latest + 1
  --force               overwrite an existing version directory
  --drift-reference     do not train: add the drift reference (per feature quantile bins of the
                        training windows) to the metadata of --name at --version (default latest),
                        rebuilt from its recorded simulator training data; weights, threshold and
                        everything else in the directory are left as they are
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
      profile: { type: 'string' },
      window: { type: 'string' },
      rate: { type: 'string' },
      'from-kafka': { type: 'boolean', default: false },
      topic: { type: 'string' },
      from: { type: 'string', default: 'earliest' },
      to: { type: 'string', default: 'latest' },
      'min-coverage': { type: 'string', default: '0.8' },
      brokers: { type: 'string' },
      registry: { type: 'string' },
      timeout: { type: 'string', default: '300' },
      out: { type: 'string' },
      name: { type: 'string', default: 'pitwall-ae' },
      version: { type: 'string' },
      force: { type: 'boolean', default: false },
      'drift-reference': { type: 'boolean', default: false },
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
  if (values['drift-reference']) {
    const { dir } = await resolveVersion(outDir, name, values.version ?? 'latest');
    const file = path.join(dir, METADATA_JSON);
    const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const meta = validateMetadata(dir, raw);
    const started = Date.now();
    const drift = simulatorDriftReference(meta);
    // Inserted before trainingData, as training writes it; every other key keeps its place and value.
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (k === 'drift') continue;
      if (k === 'trainingData') out.drift = drift;
      out[k] = v;
    }
    out.drift ??= drift;
    await writeFile(file, JSON.stringify(out, null, 2) + '\n');
    process.stdout.write(`wrote the drift reference (${drift.method}) into ${file} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  }
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
  if (values.csv && values['from-kafka']) throw new RangeError('--csv and --from-kafka exclude each other');
  if (!values.csv && (values.profile !== undefined || values.window !== undefined || values.rate !== undefined)) {
    throw new RangeError('--profile, --window and --rate apply to --csv training');
  }
  if (values.csv) {
    const profile = loadFleetProfile(values.profile ?? 'pitwall', '--profile');
    const readings = readingsInProfile(parseCsv(await readFile(values.csv, 'utf8')), profile);
    const rateHz = values.rate !== undefined ? num('rate', values.rate) : estimateRateHz(readings);
    if (rateHz === undefined) throw new RangeError(`--rate: cannot estimate it from ${values.csv} (no car with two readings); give it`);
    const sizeMs = Math.round(num('window', values.window ?? '10') * 1000);
    opts.csv = { readings, source: values.csv };
    opts.fleetProfile = profile.name;
    if (sizeMs !== 10_000 || rateHz !== 1) opts.window = { sizeMs, rateHz };
    opts.onProgress!(`csv: ${readings.length} readings in profile ${profile.name}, ${sizeMs / 1000} s windows at ${rateHz} Hz`);
  }
  const minCoverage = num('min-coverage', values['min-coverage'], (n) => n > 0 && n <= 1);
  opts.minCoverage = minCoverage;
  if (values['from-kafka']) {
    const timeoutMs = num('timeout', values.timeout) * 1000;
    opts.windows = await kafkaTrainingWindows({
      env: process.env,
      brokers: values.brokers,
      registry: values.registry,
      topic: values.topic,
      from: values.from,
      to: values.to,
      minCoverage,
      timeoutMs,
      onProgress: opts.onProgress!,
    });
  }

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

runCliIfMain(import.meta.url, 'train', main);
