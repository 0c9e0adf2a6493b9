/**
 * `npm run loadtest -- …` (from the repository root): a load test run, a sweep of fleet sizes,
 * `report <file.jsonl>` or `table <file.jsonl>…`.
 * Exit codes: 0 run finished with every check passing, 1 a check failed or the run broke,
 * 2 bad arguments (or, over TLS, no usable fleet CA in --pki), 130 interrupted (Ctrl-C; the summary is still written).
 */
import path from 'node:path';
import { localAdminEnv, repoRoot } from '@pitwall/common';
import { ArgError, isTlsUrl, parseArgs, USAGE } from './args.js';
import { runLoadTest } from './coordinator.js';
import { checkCa } from './identities.js';
import { writeReport } from './report.js';
import { readSummaries, runSweep } from './sweep.js';
import { targetsMarkdown } from './targets.js';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO = repoRoot(import.meta.url);

async function main(argv: string[]): Promise<number> {
  // It reads every pipeline topic and group: beside scripts/infra.sh it signs in to Kafka as the local
  // admin unless KAFKA_* variables say otherwise.
  const env = { ...localAdminEnv(process.env.PITWALL_HOME || path.join(REPO, '.pitwall')), ...process.env };
  let options;
  try {
    options = parseArgs(argv, env);
  } catch (err) {
    if (!(err instanceof ArgError)) throw err;
    process.stderr.write(`loadtest: ${err.message}\n(npm run loadtest -- --help for the flags)\n`);
    return 2;
  }
  if (options.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.command === 'report') {
    try {
      const { html, svg } = writeReport(options.input, options.out);
      process.stdout.write(`wrote ${html} and ${svg}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`loadtest: report ${options.input}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (options.command === 'table') {
    const { summaries, missing } = readSummaries(options.inputs);
    for (const file of missing) process.stderr.write(`loadtest: table: no run summary in ${file}\n`);
    if (summaries.length === 0) return 1;
    const md = targetsMarkdown(summaries);
    if (options.out) writeFileSync(options.out, `${md}\n`);
    process.stdout.write(`${md}\n`);
    return missing.length === 0 ? 0 : 1;
  }
  const first = options.command === 'sweep' ? options.runs[0]!.options : options;
  if (isTlsUrl(first.mqttUrl)) {
    try {
      await checkCa(first.pkiDir);
    } catch (err) {
      process.stderr.write(`loadtest: --pki: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (options.command === 'sweep') return runSweep(options, fileURLToPath(import.meta.url), (t) => void process.stdout.write(t));
  const { summary, interrupted } = await runLoadTest(options, env);
  return interrupted ? 130 : summary.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`loadtest: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
