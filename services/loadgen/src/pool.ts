/**
 * The worker processes, seen from the coordinator: forks one per slice of connections (processes,
 * not threads: each may hold up to 20,000 open files), hands each its connections and the plan,
 * and keeps what they report: their latest counters and usage, every alert, who has finished
 * publishing, their final counts, and any failure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { zeroCounters, type AlertEvent, type CoordinatorMessage, type Counters, type WorkerInit, type WorkerMessage } from './messages.js';
import type { ConnectionSpec, Range } from './partition.js';
import type { PlannedFailure } from './plan.js';

export type Final = Extract<WorkerMessage, { type: 'final' }>;

export interface Pool {
  readonly size: number;
  /** Every alert received so far, in arrival order per worker. */
  readonly alerts: AlertEvent[];
  /** Failures of workers (messages), empty while all is well. */
  readonly fatal: string[];
  /** Counters summed over the workers' latest reports. */
  counters(): Counters;
  /** CPU microseconds and RSS bytes summed over the workers' latest reports. */
  usage(): { cpuUs: number; rss: number };
  /** Resolves once every live worker has reported for second `t` of the run, or after `timeoutMs`. */
  reportedFor(t: number, timeoutMs: number): Promise<void>;
  /** Every worker has stopped publishing and seen its publishes settle. */
  allPublished(): boolean;
  /** Asks every worker to close; resolves with their final reports (missing ones left out). */
  close(timeoutMs: number): Promise<Final[]>;
}

type Shared = Omit<WorkerInit, 'type' | 'worker' | 'connections' | 'failures' | 'connectRate'> & { connectRate: number };

export function startPool(slices: readonly Range[], specs: readonly ConnectionSpec[], failures: readonly PlannedFailure[], shared: Shared): Pool {
  const latest = new Map<number, Extract<WorkerMessage, { type: 'stats' | 'final' }>>();
  const seconds = new Map<number, number>();
  const alerts: AlertEvent[] = [];
  const published = new Set<number>();
  const finals = new Map<number, Final>();
  const exited = new Set<number>();
  const fatal: string[] = [];
  const file = fileURLToPath(new URL('./worker.js', import.meta.url));

  const children: ChildProcess[] = slices.map((slice, w) => {
    const child = fork(file, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'stats' || m.type === 'final') {
        latest.set(w, m);
        alerts.push(...m.alerts);
      }
      if (m.type === 'stats') seconds.set(w, m.second);
      if (m.type === 'published') published.add(w);
      if (m.type === 'final') finals.set(w, m);
      if (m.type === 'fatal') fatal.push(`worker ${w}: ${m.message}`);
    });
    child.on('exit', (code, signal) => {
      exited.add(w);
      if (!finals.has(w)) fatal.push(`worker ${w} exited (${signal ?? `code ${code}`}) without its final counts`);
    });
    const connections = specs.slice(slice.start, slice.start + slice.count);
    const labels = new Set(connections.map((s) => s.label));
    // A car's id is its connection's label plus `-<n>`.
    const mine = failures.filter((f) => labels.has(f.vehicleId.slice(0, f.vehicleId.lastIndexOf('-'))));
    child.send({ ...shared, type: 'init', worker: w, connections, failures: mine, connectRate: shared.connectRate / slices.length } satisfies CoordinatorMessage);
    return child;
  });

  const sum = <T>(f: (m: Extract<WorkerMessage, { type: 'stats' | 'final' }>) => T, add: (a: T, b: T) => T, zero: T): T => [...latest.values()].map(f).reduce(add, zero);
  return {
    size: children.length,
    alerts,
    fatal,
    counters: () =>
      sum(
        (m) => m.counters,
        (a, b) => {
          const out = { ...a };
          for (const k of Object.keys(out) as (keyof Counters)[]) out[k] += b[k];
          return out;
        },
        zeroCounters(),
      ),
    usage: () => sum((m) => m.usage, (a, b) => ({ cpuUs: a.cpuUs + b.cpuUs, rss: a.rss + b.rss }), { cpuUs: 0, rss: 0 }),
    async reportedFor(t, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      const behind = (): boolean => children.some((_, w) => !exited.has(w) && !finals.has(w) && (seconds.get(w) ?? 0) < t);
      while (behind() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    allPublished: () => published.size === children.length,
    async close(timeoutMs) {
      for (const child of children) if (child.connected) child.send({ type: 'close' } satisfies CoordinatorMessage);
      const deadline = Date.now() + timeoutMs;
      while (!children.every((_, w) => finals.has(w) || exited.has(w)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return [...finals.values()];
    },
  };
}
