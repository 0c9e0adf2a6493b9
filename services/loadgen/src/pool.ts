/**
 * The worker processes, seen from the coordinator: forks one per slice of connections (processes,
 * not threads: each may hold up to 20,000 open files), hands each its connections, waits until all
 * are ready (their certificates issued), starts them with the plan, and keeps what they report:
 * their latest counters and usage, every alert, who has finished publishing, their final counts,
 * and any failure.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { zeroCounters, type AlertEvent, type CoordinatorMessage, type Counters, type IdentityStats, type Usage, type WorkerInit, type WorkerMessage } from './messages.js';
import type { ConnectionSpec, Range } from './partition.js';
import type { Clock, PlannedFailure } from './plan.js';

export type Final = Extract<WorkerMessage, { type: 'final' }>;

export interface Pool {
  readonly size: number;
  /** Every alert received so far, in arrival order per worker. */
  readonly alerts: AlertEvent[];
  /** Failures of workers (messages), empty while all is well. */
  readonly fatal: string[];
  /**
   * Resolves once every worker is ready to start (certificates issued) with what each issued, or
   * with null as soon as one failed. `onProgress` gets certificates issued so far over all workers.
   */
  ready(onProgress?: (done: number, total: number) => void): Promise<(IdentityStats | null)[] | null>;
  /** Starts every worker on the run's clock, each with its own cars' failures. */
  start(clock: Clock, failures: readonly PlannedFailure[]): void;
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

type Shared = Omit<WorkerInit, 'type' | 'worker' | 'connections' | 'connectRate' | 'connectPending'> & { connectRate: number; connectPending: number };

export function startPool(slices: readonly Range[], specs: readonly ConnectionSpec[], shared: Shared): Pool {
  const ready = new Map<number, IdentityStats | null>();
  const issuing = new Map<number, number>();
  const readyUsage = new Map<number, Usage>();
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
      if (m.type === 'issuing') issuing.set(w, m.done);
      if (m.type === 'ready') {
        ready.set(w, m.identities);
        readyUsage.set(w, m.usage);
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
    child.send({
      ...shared,
      type: 'init',
      worker: w,
      connections,
      connectRate: shared.connectRate / slices.length,
      connectPending: Math.max(1, Math.ceil(shared.connectPending / slices.length)),
    } satisfies CoordinatorMessage);
    return child;
  });

  const sum = <T>(f: (m: Extract<WorkerMessage, { type: 'stats' | 'final' }>) => T, add: (a: T, b: T) => T, zero: T): T => [...latest.values()].map(f).reduce(add, zero);
  return {
    size: children.length,
    alerts,
    fatal,
    async ready(onProgress) {
      let shown = 0;
      let lastShownAt = Date.now();
      while (ready.size < children.length) {
        if (fatal.length > 0) return null;
        await new Promise((r) => setTimeout(r, 50));
        const done = [...issuing.values()].reduce((a, b) => a + b, 0);
        if (onProgress && done > shown && Date.now() - lastShownAt >= 2000) {
          onProgress(done, specs.length);
          shown = done;
          lastShownAt = Date.now();
        }
      }
      return children.map((_, w) => ready.get(w) ?? null);
    },
    start(clock, failures) {
      children.forEach((child, w) => {
        const slice = slices[w]!;
        const labels = new Set(specs.slice(slice.start, slice.start + slice.count).map((s) => s.label));
        // A car's id is its connection's label plus `-<n>`.
        const mine = failures.filter((f) => labels.has(f.vehicleId.slice(0, f.vehicleId.lastIndexOf('-'))));
        if (child.connected) child.send({ type: 'start', clock, failures: mine } satisfies CoordinatorMessage);
      });
    },
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
    // Before a worker's first stats, what it used getting ready (issuing certificates): so the run's first second does not count that CPU.
    usage: () => children.map((_, w) => latest.get(w)?.usage ?? readyUsage.get(w) ?? { cpuUs: 0, rss: 0 }).reduce((a, b) => ({ cpuUs: a.cpuUs + b.cpuUs, rss: a.rss + b.rss }), { cpuUs: 0, rss: 0 }),
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
      // A worker exits by itself after its final counts; give it a moment (it may be writing a --cpu-prof profile).
      const exitBy = Math.min(deadline, Date.now() + 5_000);
      while (!children.every((_, w) => exited.has(w)) && Date.now() < exitBy) await new Promise((r) => setTimeout(r, 50));
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return [...finals.values()];
    },
  };
}
