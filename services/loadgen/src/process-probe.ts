/**
 * What each part of the pipeline costs while the load runs: CPU seconds and resident memory of
 * every service and local broker, sampled once a second in a loop of its own.
 * - Services: their Prometheus endpoint (`/metrics` on the health port), prom-client's default
 *   `process_cpu_seconds_total` and `process_resident_memory_bytes`. Works wherever the services run.
 * - Local brokers (Kafka, Mosquitto, Apicurio, HiveMQ): the pid files scripts/infra.sh writes, read
 *   from /proc (Linux, same machine only). A pid file names the process; the pid must still be
 *   alive and its start time unchanged, or the sample is null (a restarted broker starts a new series).
 * A source that does not answer reads as null; the run goes on without it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ProcessSample {
  /** CPU seconds since the process started (user + system). */
  cpuS: number;
  rssBytes: number;
}

export type ProcessSource = { name: string; kind: 'metrics'; url: string } | { name: string; kind: 'pid'; file: string };

/** The two default process metrics of a Prometheus text exposition, or null when either is missing. */
export function parsePromProcess(text: string): ProcessSample | null {
  let cpuS: number | undefined;
  let rssBytes: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^(process_cpu_seconds_total|process_resident_memory_bytes)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (!Number.isFinite(v)) continue;
    if (m[1] === 'process_cpu_seconds_total') cpuS = v;
    else rssBytes = v;
  }
  return cpuS === undefined || rssBytes === undefined ? null : { cpuS, rssBytes };
}

/**
 * /proc/<pid>/stat: utime and stime (fields 14 and 15, in clock ticks) and the start time (22).
 * The command name (field 2) is in parentheses and may hold spaces or ')', so fields are counted
 * from its last ')'.
 */
export function parseProcStat(stat: string, ticksPerS = 100): { cpuS: number; startTicks: number } | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const rest = stat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state)
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  const start = Number(rest[22 - 3]);
  if (![utime, stime, start].every(Number.isFinite)) return null;
  return { cpuS: (utime + stime) / ticksPerS, startTicks: start };
}

/** VmRSS of /proc/<pid>/status, in bytes. */
export function parseProcStatusRss(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

export interface ProcessUse {
  /** % of one core since the previous sample; null without one (first sample, restarted process). */
  cpuPct: number | null;
  rssMB: number;
}

/** CPU % of one core between two samples of one process, and its memory now; null when it does not answer. */
export function processUse(now: ProcessSample | null, prev: ProcessSample | null, dtS: number): ProcessUse | null {
  if (!now) return null;
  const rssMB = Math.round(now.rssBytes / 2 ** 20);
  if (!prev || dtS <= 0 || now.cpuS < prev.cpuS) return { cpuPct: null, rssMB };
  return { cpuPct: Math.round(((now.cpuS - prev.cpuS) / dtS) * 100), rssMB };
}

/** The local brokers' pid files of scripts/infra.sh in <dir> (kafka.pid, mosquitto.pid, ...). */
export function pidSources(dir: string): ProcessSource[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((f) => /^[a-z][a-z0-9-]*\.pid$/.test(f) && !f.startsWith('svc-'))
    .sort()
    .map((f) => ({ name: f.slice(0, -4), kind: 'pid' as const, file: path.join(dir, f) }));
}

export interface ProcessSampler {
  readonly names: readonly string[];
  /** The latest sample per source name (null: not answering), and when it was taken. */
  latest(): { at: number; processes: Record<string, ProcessSample | null> };
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export function startProcessSampler(sources: readonly ProcessSource[], timeoutMs = 800): ProcessSampler {
  const started = new Map<string, number>(); // pid source -> start time seen first
  const one = async (s: ProcessSource): Promise<ProcessSample | null> => {
    try {
      if (s.kind === 'metrics') {
        const res = await fetch(s.url, { signal: AbortSignal.timeout(timeoutMs) });
        return res.ok ? parsePromProcess(await res.text()) : null;
      }
      const pid = readFileSync(s.file, 'utf8').trim();
      if (!/^\d+$/.test(pid)) return null;
      const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      const rssBytes = parseProcStatusRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!stat || rssBytes === null) return null;
      const first = started.get(s.name) ?? stat.startTicks;
      started.set(s.name, first);
      return first === stat.startTicks ? { cpuS: stat.cpuS, rssBytes } : null;
    } catch {
      return null;
    }
  };
  const sampleAll = async () => {
    const values = await Promise.all(sources.map(one));
    return { at: Date.now(), processes: Object.fromEntries(sources.map((s, i) => [s.name, values[i] ?? null])) };
  };
  let sample: { at: number; processes: Record<string, ProcessSample | null> } = {
    at: Date.now(),
    processes: Object.fromEntries(sources.map((s) => [s.name, null])),
  };
  let running = sources.length > 0;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      sample = await sampleAll();
      await sleep(t0 + 1000 - Date.now());
    }
  })();
  return {
    names: sources.map((s) => s.name),
    latest: () => sample,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
