/**
 * `npm run loadtest -- …` (from the repository root): a load test run, or `report <file.jsonl>`.
 * Exit codes: 0 run finished with every check passing, 1 a check failed or the run broke,
 * 2 bad arguments (or, over TLS, no usable fleet CA in --pki), 130 interrupted (Ctrl-C; the summary is still written).
 */
import { ArgError, isTlsUrl, parseArgs, USAGE } from './args.js';
import { runLoadTest } from './coordinator.js';
import { checkCa } from './identities.js';
import { writeReport } from './report.js';

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseArgs(argv, process.env);
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
  const { summary, interrupted } = await runLoadTest(options);
  return interrupted ? 130 : summary.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`loadtest: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
