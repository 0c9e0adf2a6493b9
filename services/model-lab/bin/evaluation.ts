/**
 * Command line: `npm run evaluate -- --help`. Evaluates a model version on a simulated fleet with
 * every failure mode injected (evaluation.ts) and writes evaluation.json, evaluation.txt and
 * evaluation.png; or, with --csv, on a fleet's recorded readings, per car (csv-evaluation.ts).
 * Needs no brokers.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { loadFleetProfile, runCliIfMain } from '@pitwall/common';
import { FAILURE_MODES, parseCsv, type FailureMode } from '@pitwall/simulator';
import { evaluateCsv, formatCsvReport } from '../src/csv-evaluation.js';
import { DEFAULT_FLEET_EVALUATION, evaluateFleet, formatReport, type FleetEvaluationOptions } from '../src/evaluation.js';
import { loadModelDir, resolveVersion, type LoadedModel } from '@pitwall/model';
import { renderEvaluationPng } from '../src/plot.js';

const D = DEFAULT_FLEET_EVALUATION;
const HELP = `Evaluate a model version against a simulated fleet with known failures (no brokers needed).

Usage: npm run evaluate -- (--model DIR [--version N] | --model-dir DIR) [options]

Model:
  --model DIR           a model's folder holding numbered versions, e.g. models/pitwall-ae
  --version N|latest    version under --model                          (default latest)
  --model-dir DIR       one version directory instead, e.g. models/pitwall-ae/1
Fleet (seeded simulator, in-process; same flags give the same evaluation.json):
  --healthy-cars N      cars that never fail                           (default ${D.healthyCars})
  --cars-per-mode N     failing cars per failure mode                  (default ${D.carsPerMode})
  --modes a,b           failure modes                                  (default all: ${FAILURE_MODES.join(',')})
  --duration MIN        simulated minutes per car, 1 reading/s         (default ${D.durationMs / 60_000})
  --onset MIN           first onset, minutes after the start           (default ${D.onsetMs / 60_000})
  --onset-spread MIN    onsets of a mode's cars spread over this       (default ${D.onsetSpreadMs / 60_000})
  --ramp MIN            onset to full severity                         (default ${D.rampMs / 60_000})
  --seed S              fleet seed                                     (default ${D.seed})
  --window S            window size in seconds                         (default: the model's, ${D.windowSizeMs / 1000})
  --threshold X         alert threshold instead of the model's
A fleet's own data instead (no ground truth; per car, what the model found next to the readings
outside the fleet profile's plausible ranges; the fleet flags above are then unused):
  --csv FILE            readings in the reference CSV format (time,car,<18 sensors>)
  --profile NAME        the CSV's fleet profile (schemas/fleet-profiles/NAME.json, or a file)
                                                                       (default: the model's)
  --top N               cars in the printed table, highest score first (default 20; the JSON has all)
Output:
  --out DIR             where to write evaluation.json, evaluation.txt, evaluation.png
                        (default .pitwall/evaluation/<name>-<version>/)
  --json                print the JSON report instead of the table
  --no-png              skip the picture
  --help

What counts (details in evaluation.json "definitions" and docs/models.md):
  alert = window score > threshold or the stuck-sensor detector calls a sensor stuck. True alert: failing car, window ends after onset. False alert:
  healthy car, or failing car's window ending at/before onset. Per mode (healthy cars + that mode's
  cars): recall = cars with a true alert / cars; precision = true alert windows / all alert windows
  of those cars; false alerts per healthy vehicle-hour; lead time = onset -> end of the first
  true-alert window (median, p90 over detected cars).
`;

export function parseEvaluateArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      version: { type: 'string', default: 'latest' },
      'model-dir': { type: 'string' },
      'healthy-cars': { type: 'string', default: String(D.healthyCars) },
      'cars-per-mode': { type: 'string', default: String(D.carsPerMode) },
      modes: { type: 'string', default: FAILURE_MODES.join(',') },
      duration: { type: 'string', default: String(D.durationMs / 60_000) },
      onset: { type: 'string', default: String(D.onsetMs / 60_000) },
      'onset-spread': { type: 'string', default: String(D.onsetSpreadMs / 60_000) },
      ramp: { type: 'string', default: String(D.rampMs / 60_000) },
      seed: { type: 'string', default: String(D.seed) },
      window: { type: 'string' },
      threshold: { type: 'string' },
      csv: { type: 'string' },
      profile: { type: 'string' },
      top: { type: 'string', default: '20' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      'no-png': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const num = (flag: string, raw: string, ok: (n: number) => boolean): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new RangeError(`--${flag}: invalid value "${raw}"`);
    return n;
  };
  const int = (flag: string, raw: string, min: number): number => num(flag, raw, (n) => Number.isInteger(n) && n >= min);
  const minutes = (flag: string, raw: string): number => Math.round(num(flag, raw, (n) => n >= 0) * 60_000);
  const modes = values.modes
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  for (const m of modes) if (!(FAILURE_MODES as readonly string[]).includes(m)) throw new RangeError(`--modes: unknown failure mode "${m}", expected ${FAILURE_MODES.join(', ')}`);
  if (values.help) return { help: true as const };
  if ((values.model === undefined) === (values['model-dir'] === undefined)) throw new RangeError('give exactly one of --model DIR (with --version) or --model-dir DIR');
  const fleet: Omit<FleetEvaluationOptions, 'windowSizeMs'> & { windowSizeMs: number | undefined } = {
    seed: int('seed', values.seed, 0),
    healthyCars: int('healthy-cars', values['healthy-cars'], 0),
    carsPerMode: int('cars-per-mode', values['cars-per-mode'], 1),
    modes: modes as FailureMode[],
    durationMs: minutes('duration', values.duration),
    onsetMs: minutes('onset', values.onset),
    onsetSpreadMs: minutes('onset-spread', values['onset-spread']),
    rampMs: minutes('ramp', values.ramp),
    windowSizeMs: values.window === undefined ? undefined : Math.round(num('window', values.window, (n) => n >= 1) * 1000),
    threshold: values.threshold === undefined ? undefined : num('threshold', values.threshold, (n) => n > 0),
  };
  if (values.csv === undefined && values.profile !== undefined) throw new RangeError('--profile applies to --csv evaluation');
  if (values.csv !== undefined && values.threshold !== undefined) throw new RangeError("--threshold applies to the simulated fleet; a CSV is judged by the model's own");
  return {
    help: false as const,
    csv: values.csv,
    profile: values.profile,
    top: int('top', values.top, 1),
    model: values.model,
    version: values.version,
    modelDir: values['model-dir'],
    fleet,
    out: values.out,
    json: values.json,
    png: !values['no-png'],
  };
}

async function main(argv: string[]): Promise<number> {
  const args = parseEvaluateArgs(argv);
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const dir = args.modelDir !== undefined ? path.resolve(args.modelDir) : (await resolveVersion(path.resolve(args.model!, '..'), path.basename(path.resolve(args.model!)), args.version)).dir;
  // The cpu backend: pure JS, the same floating-point results on every machine and run.
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const loaded = await loadModelDir(dir);
  const meta = loaded.metadata;
  if (args.csv !== undefined) return evaluateCsvCommand(args as typeof args & { csv: string }, loaded);
  const fleet: FleetEvaluationOptions = { ...args.fleet, windowSizeMs: args.fleet.windowSizeMs ?? meta.window.sizeMs };
  const progress = (line: string): void => void process.stderr.write(line + '\n');
  if (fleet.windowSizeMs !== meta.window.sizeMs) progress(`warning: --window ${fleet.windowSizeMs / 1000} s differs from the ${meta.window.sizeMs / 1000} s windows the model was trained on`);
  const started = Date.now();
  const report = evaluateFleet(loaded.model, meta, fleet, progress);
  loaded.model.dispose();
  const out = path.resolve(args.out ?? path.join('.pitwall', 'evaluation', `${meta.name}-${meta.version}`));
  await mkdir(out, { recursive: true });
  const table = formatReport(report);
  await writeFile(path.join(out, 'evaluation.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(path.join(out, 'evaluation.txt'), table + '\n');
  if (args.png) await writeFile(path.join(out, 'evaluation.png'), renderEvaluationPng(report));
  process.stdout.write((args.json ? JSON.stringify(report, null, 2) : table) + '\n');
  progress(`wrote ${out}/evaluation.{json,txt${args.png ? ',png' : ''}} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

async function evaluateCsvCommand(args: { csv: string; profile: string | undefined; top: number; out: string | undefined; json: boolean }, loaded: LoadedModel): Promise<number> {
  const meta = loaded.metadata;
  const profile = loadFleetProfile(args.profile ?? meta.fleetProfile ?? 'pitwall', '--profile');
  if (meta.fleetProfile !== undefined && meta.fleetProfile !== profile.name) {
    process.stderr.write(`warning: the model was trained on profile ${meta.fleetProfile}, the CSV is read in ${profile.name}\n`);
  }
  const started = Date.now();
  const report = evaluateCsv(loaded.model, meta, parseCsv(await readFile(args.csv, 'utf8')), profile, path.basename(args.csv));
  loaded.model.dispose();
  const out = path.resolve(args.out ?? path.join('.pitwall', 'evaluation', `${meta.name}-${meta.version}-${path.basename(args.csv, path.extname(args.csv))}`));
  await mkdir(out, { recursive: true });
  const table = formatCsvReport(report, args.top);
  await writeFile(path.join(out, 'evaluation-csv.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(path.join(out, 'evaluation-csv.txt'), formatCsvReport(report, Number.POSITIVE_INFINITY) + '\n');
  process.stdout.write((args.json ? JSON.stringify(report, null, 2) : table) + '\n');
  process.stderr.write(`wrote ${out}/evaluation-csv.{json,txt} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}

runCliIfMain(import.meta.url, 'evaluate', main);
