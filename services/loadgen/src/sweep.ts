/**
 * A sweep (`--cars 1000,5000,…`): each size runs in its own process, one after the other, so that
 * one run's workers, sockets and memory are gone before the next starts; then the targets' table of
 * all of them. Ctrl-C stops the run under way and skips the rest (the table covers the runs that
 * finished).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SweepOptions } from './args.js';
import { parseRunLog } from './report.js';
import type { Summary } from './summary.js';
import { targetsMarkdown } from './targets.js';

/** Summaries of the given run files; a file without one (a run that broke) is named in `missing`. */
export function readSummaries(files: readonly string[]): { summaries: Summary[]; missing: string[] } {
  const summaries: Summary[] = [];
  const missing: string[] = [];
  for (const file of files) {
    const summary = existsSync(file) ? parseRunLog(readFileSync(file, 'utf8')).summary : undefined;
    if (summary) summaries.push(summary);
    else missing.push(file);
  }
  return { summaries, missing };
}

/** Runs one load test in a child process (this same entry point); resolves with its exit code. */
function runChild(script: string, argv: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, 'run', ...argv], { stdio: 'inherit' });
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

/** 0 when every run passed its checks, 1 when one did not, 130 when interrupted. */
export async function runSweep(o: SweepOptions, script: string, write: (text: string) => void): Promise<number> {
  let interrupted = false;
  // The child gets Ctrl-C from the terminal too; this process only stops starting new runs.
  const onInt = (): void => void (interrupted = true);
  process.on('SIGINT', onInt);
  const codes: number[] = [];
  try {
    for (const [k, run] of o.runs.entries()) {
      if (interrupted) break;
      if (k > 0 && o.pauseS > 0) {
        write(`sweep: ${o.pauseS} s for the pipeline to settle before ${run.options.cars} cars\n`);
        await new Promise((r) => setTimeout(r, o.pauseS * 1000));
        if (interrupted) break;
      }
      write(`sweep: run ${k + 1} of ${o.runs.length}: ${run.options.cars} cars -> ${run.options.out}\n`);
      const code = await runChild(script, run.argv);
      codes.push(code);
      if (code === 130) interrupted = true;
    }
  } finally {
    process.off('SIGINT', onInt);
  }
  const { summaries, missing } = readSummaries(o.runs.slice(0, codes.length).map((r) => r.options.out!));
  for (const file of missing) write(`sweep: no summary in ${file} (the run did not finish)\n`);
  if (summaries.length > 0) {
    const md = targetsMarkdown(summaries);
    mkdirSync(path.dirname(o.tableOut), { recursive: true });
    writeFileSync(o.tableOut, `${md}\n`);
    write(`\n${md}\n\nwritten to ${o.tableOut}\n`);
  }
  if (interrupted) return 130;
  return codes.length === o.runs.length && codes.every((c) => c === 0) ? 0 : 1;
}
