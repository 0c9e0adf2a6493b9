/** What every service factory (createIngest, createWindowing, ...) returns. */
export interface Service<S = Record<string, number>> {
  /** Connects, provisions its topics and starts consuming. */
  start(): Promise<void>;
  /** Stops intake, flushes and commits what is done, disconnects. */
  close(): Promise<void>;
  /** For /readyz. */
  ready(): boolean;
  stats(): S;
}

/** Graceful shutdown on SIGTERM/SIGINT: runs `close` once, exits non-zero if it fails or hangs. */
import { pathToFileURL } from 'node:url';
import type { Logger } from './log.js';

export function onShutdown(log: Logger, close: () => Promise<void>, timeoutMs = 20_000): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (closing) return;
    closing = true;
    log.info('shutting down', { signal });
    const timer = setTimeout(() => {
      log.error('shutdown timed out', { timeoutMs });
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

/** Runs a service's main, printing a config or start-up error as one JSON line and exiting 1. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err as Error & { variable?: string };
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', service, msg: 'failed to start', error: e.message, variable: e.variable }) + '\n');
    process.exit(1);
  });
}

/**
 * Runs a command-line tool's `main(argv)` when its module is the one node was started with (so
 * tests can import the module without running it), exiting with main's code; an error prints
 * `<name>: <message>` and exits 1.
 */
export function runCliIfMain(moduleUrl: string, name: string, main: (argv: string[]) => Promise<number>): void {
  const entry = process.argv[1];
  if (entry === undefined || moduleUrl !== pathToFileURL(entry).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
