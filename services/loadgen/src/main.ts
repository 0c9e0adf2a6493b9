/**
 * `npm run loadtest -- …` (from the repository root): a load test run, or `report <file.jsonl>`.
 * Exit codes: 0 run finished with every check passing, 1 a check failed or the run broke,
 * 2 bad arguments (or, over TLS, no usable fleet CA in --pki), 130 interrupted (Ctrl-C; the summary is still written).
 */
import path from 'node:path';
import { localAdminEnv, repoRoot } from '@pitwall/common';
import { ArgError, isTlsUrl, parseArgs, USAGE } from './args.js';
import { runLoadTest } from './coordinator.js';
import { checkCa } from './identities.js';
import { writeReport } from './report.js';

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
  if (isTlsUrl(options.mqttUrl)) {
    try {
      await checkCa(options.pkiDir);
    } catch (err) {
      process.stderr.write(`loadtest: --pki: ${(err as Error).message}\n`);
      return 2;
    }
  }
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
