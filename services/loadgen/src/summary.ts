/**
 * The end-of-run summary (the last JSON line of the output file, and a table on stdout) with its
 * checks: every injected failure alerted on its car, no healthy car alerted, and every reading a
 * car got a PUBACK for is in the telemetry topic (per car: distinct readings found >= acknowledged).
 * Pure.
 */
import { CONNECT_ERROR_KINDS, errorKindsOf, type ConnectErrorKind } from './connect-errors.js';
import os from 'node:os';
import type { RunOptions } from './args.js';
import { STAGES, type Stage } from './kafka-probe.js';
import type { AlertEvent, Counters, RampStats } from './messages.js';
import { summarize, type LatencySummary } from './percentiles.js';
import { wallAt, type Clock, type PlannedFailure } from './plan.js';
import type { SecondRecord } from './second.js';
import type { TelemetryCount } from './verify.js';

export interface FailureResult {
  vehicleId: string;
  mode: string;
  onsetTs: number;
  alerted: boolean;
  /** First alert's arrival minus the wall time the car's event time reached the onset. */
  detectionMs: number | null;
  area: string | null;
}

export interface Summary {
  type: 'summary';
  run: {
    prefix: string;
    mode: string;
    cars: number;
    connections: number;
    workers: number;
    rateHz: number;
    jitter: number;
    timeScale: number;
    connectRate: number;
    /** Most connections opened and not yet connected, all workers together (absent before 2026-12-04). */
    connectPending?: number;
    durationS: number;
    /** Window size and windowing's grace the latencies were dated with (absent in older files). */
    windowMs?: number;
    graceMs?: number;
    startedAt: string;
    machine: { cpus: number; cpuModel: string; memGB: number };
  };
  connections: {
    target: number;
    peakUp: number;
    allUpAfterS: number | null;
    connectErrors: number;
    /** connectErrors by kind (connect-errors.ts); absent in summaries written before 2026-12-04. */
    errorKinds?: Record<ConnectErrorKind, number>;
    disconnects: number;
    /** First connection opened -> last one's first CONNACK, over all workers (null: not all came up, or unknown). */
    rampS: number | null;
    /** Connections per second over the ramp (at most --connect-rate). */
    ratePerS: number | null;
    /** Open -> first CONNACK per connection: TCP, TLS handshake with certificates, MQTT CONNECT. */
    connectMs: LatencySummary;
  };
  /** Certificates issued in memory before the run (TLS only): the slowest worker's wall time, cost per 1,000 in one process. */
  identities: { kind: 'car' | 'gateway'; issued: number; setupMs: number; wallMs: number; msPer1000: number; cpuMsPer1000: number; contextMsPer1000: number } | null;
  readings: { offeredPerS: number; sent: number; acked: number; failed: number; unrouted: number; sentPerS: number; ackedPerS: number; peakAckedPerS: number };
  stages: Record<Stage, { records: number | null; perS: number | null; peakPerS: number | null }>;
  lag: Record<string, { max: number | null; final: number | null }>;
  alerts: { received: number; duplicates: number; receipts: number; cars: number; latencyMs: LatencySummary; detectionMs: LatencySummary };
  failures: FailureResult[];
  checks: {
    failuresAlerted: { ok: boolean; missed: string[] };
    healthyNotAlerted: { ok: boolean; cars: string[] };
    /** `short` lists at most 20 cars; `missing` sums all of them (absent in older files). */
    telemetry:
      | { ok: boolean; acked: number; found: number; records: number; duplicates: number; missing?: number; short: { vehicleId: string; acked: number; found: number }[] }
      | { ok: null; skipped: string };
  };
  loadgen: { processes: number; cpuSeconds: number; cpuPctAvg: number; cpuPctPeak: number; rssMBPeak: number };
  /**
   * What each service and local broker cost: % of one core on average over the steady seconds (all
   * connected, publishing) and at peak, resident MB at peak and at the end. `total` adds up those
   * that answered. Absent in files of older runs.
   */
  processes?: Record<string, ProcessCost>;
  ok: boolean;
}

export interface ProcessCost {
  cpuPctAvg: number | null;
  cpuPctPeak: number | null;
  rssMBPeak: number | null;
  rssMBEnd: number | null;
}

export interface SummaryInput {
  options: RunOptions;
  clock: Clock;
  failures: readonly PlannedFailure[];
  seconds: readonly SecondRecord[];
  /** Stage offsets just before publishing started. */
  baseline: Readonly<Record<Stage, number | null>>;
  alerts: readonly AlertEvent[];
  counters: Counters;
  ackedByCar: Readonly<Record<string, number>>;
  telemetry: TelemetryCount | { skipped: string };
  cpuUs: number;
  processes: number;
  /** Each worker's ramp (left out when a worker's final report is missing). */
  ramps?: readonly RampStats[] | undefined;
  identities?: Summary['identities'];
}

/** Latency of each incident's first alert (revision 1): end of its first anomalous window -> arrival. */
/**
 * Wall ms from the moment an alert's first anomalous window could close (its end plus the
 * windowing grace, in event time) to the alert's arrival on the car; first revisions only.
 */
export function alertLatencies(alerts: readonly AlertEvent[], clock: Clock, windowMs: number, graceMs = 0): number[] {
  return alerts.filter((a) => a.revision === 1 && a.openedAt !== null).map((a) => a.receivedAt - wallAt(clock, a.openedAt! + windowMs + graceMs));
}

const round = (v: number): number => Math.round(v);
const mean = (xs: readonly (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? null : round(v.reduce((a, b) => a + b, 0) / v.length);
};
const max = (xs: readonly (number | null)[]): number | null => xs.reduce<number | null>((m, x) => (x === null ? m : m === null ? x : Math.max(m, x)), null);

export function buildSummary(i: SummaryInput): Summary {
  const o = i.options;
  // Rates are averaged over the steady seconds: every connection up, still publishing. When some
  // never came up (a machine too busy to handshake them all), the publishing seconds with at least
  // 95 % of the most that were up: else such a run would report no rates at all.
  const run = i.seconds.filter((s) => s.phase === 'run');
  const peakUp = max(i.seconds.filter((s) => s.phase !== 'drain').map((s) => s.connections.up)) ?? 0;
  const steady = run.length > 0 ? run : i.seconds.filter((s) => s.phase === 'ramp' && peakUp > 0 && s.connections.up >= 0.95 * peakUp);
  const failing = new Set(i.failures.map((f) => f.vehicleId));
  const firstAlert = new Map<string, AlertEvent>();
  for (const a of [...i.alerts].sort((x, y) => x.receivedAt - y.receivedAt)) if (!firstAlert.has(a.vehicleId)) firstAlert.set(a.vehicleId, a);

  const failures: FailureResult[] = i.failures.map((f) => {
    const a = firstAlert.get(f.vehicleId);
    return { vehicleId: f.vehicleId, mode: f.mode, onsetTs: f.onsetTs, alerted: a !== undefined, detectionMs: a ? round(a.receivedAt - f.onsetWall) : null, area: a?.area ?? null };
  });
  const healthyAlerted = [...firstAlert.keys()].filter((id) => !failing.has(id)).sort();

  const stages = {} as Summary['stages'];
  for (const s of STAGES) {
    const a = i.baseline[s];
    const total = i.seconds[i.seconds.length - 1]?.stages[s].offset ?? null;
    stages[s] = {
      records: a === null || total === null ? null : total - a,
      perS: mean(steady.map((x) => x.stages[s].perS)),
      peakPerS: max(i.seconds.map((x) => x.stages[s].perS)),
    };
  }
  const lag: Summary['lag'] = {};
  for (const g of o.groups) lag[g] = { max: max(i.seconds.map((x) => x.lag[g] ?? null)), final: i.seconds[i.seconds.length - 1]?.lag[g] ?? null };

  let telemetry: Summary['checks']['telemetry'];
  if ('skipped' in i.telemetry) telemetry = { ok: null, skipped: i.telemetry.skipped };
  else {
    const count = i.telemetry;
    const short = Object.entries(i.ackedByCar)
      .filter(([id, n]) => (count.byCar.get(id) ?? 0) < n)
      .map(([vehicleId, acked]) => ({ vehicleId, acked, found: count.byCar.get(vehicleId) ?? 0 }));
    const missing = short.reduce((a, x) => a + x.acked - x.found, 0);
    telemetry = { ok: short.length === 0, acked: i.counters.acked, found: count.distinct, records: count.records, duplicates: count.duplicates, missing, short: short.slice(0, 20) };
  }

  const c = i.counters;
  const allUp = i.seconds.find((s) => s.connections.up >= s.connections.target && s.connections.target > 0);
  const cpuS = i.cpuUs / 1e6;
  const spanS = Math.max(1, i.seconds.length);
  const missed = failures.filter((f) => !f.alerted).map((f) => f.vehicleId);
  const summary: Summary = {
    type: 'summary',
    run: {
      prefix: o.prefix,
      mode: o.mode,
      cars: o.cars,
      connections: o.connections,
      workers: o.workers,
      rateHz: o.rateHz,
      jitter: o.jitter,
      timeScale: o.timeScale,
      connectRate: o.connectRate,
      connectPending: o.connectPending,
      durationS: o.durationS,
      windowMs: o.windowMs,
      graceMs: o.graceMs,
      startedAt: new Date(i.clock.wallStart).toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGB: round(os.totalmem() / 2 ** 30) },
    },
    connections: {
      target: o.connections,
      peakUp: max(i.seconds.map((s) => s.connections.up)) ?? 0,
      allUpAfterS: allUp?.t ?? null,
      connectErrors: c.connectErrors,
      errorKinds: errorKindsOf(c),
      disconnects: c.disconnects,
      ...ramp(i.ramps, o.connections),
    },
    identities: i.identities ?? null,
    readings: {
      offeredPerS: round(o.cars * o.rateHz * o.timeScale),
      sent: c.sent,
      acked: c.acked,
      failed: c.failed,
      unrouted: c.unrouted,
      sentPerS: mean(steady.map((x) => x.readings.sentPerS)) ?? 0,
      ackedPerS: mean(steady.map((x) => x.readings.ackedPerS)) ?? 0,
      peakAckedPerS: max(i.seconds.map((s) => s.readings.ackedPerS)) ?? 0,
    },
    stages,
    lag,
    alerts: {
      received: c.alerts,
      duplicates: c.duplicateAlerts,
      receipts: c.receipts,
      cars: firstAlert.size,
      latencyMs: summarize(alertLatencies(i.alerts, i.clock, o.windowMs, o.graceMs).map(round)),
      detectionMs: summarize(failures.flatMap((f) => (f.detectionMs === null ? [] : [f.detectionMs]))),
    },
    failures,
    checks: {
      failuresAlerted: { ok: missed.length === 0, missed },
      healthyNotAlerted: { ok: healthyAlerted.length === 0, cars: healthyAlerted.slice(0, 50) },
      telemetry,
    },
    loadgen: {
      processes: i.processes,
      cpuSeconds: Math.round(cpuS * 10) / 10,
      cpuPctAvg: round((cpuS / spanS) * 100),
      cpuPctPeak: max(i.seconds.map((s) => s.loadgen.cpuPct)) ?? 0,
      rssMBPeak: max(i.seconds.map((s) => s.loadgen.rssMB)) ?? 0,
    },
    processes: processCosts(i.seconds, steady),
    ok: false,
  };
  summary.ok = summary.checks.failuresAlerted.ok && summary.checks.healthyNotAlerted.ok && summary.checks.telemetry.ok !== false;
  return summary;
}

function processCosts(seconds: readonly SecondRecord[], steady: readonly SecondRecord[]): Record<string, ProcessCost> {
  const names = [...new Set(seconds.flatMap((x) => Object.keys(x.processes ?? {})))];
  const out: Record<string, ProcessCost> = {};
  for (const name of names) {
    const use = (x: SecondRecord) => x.processes?.[name] ?? null;
    if (seconds.every((x) => use(x) === null)) continue;
    out[name] = {
      cpuPctAvg: mean(steady.map((x) => use(x)?.cpuPct ?? null)),
      cpuPctPeak: max(seconds.map((x) => use(x)?.cpuPct ?? null)),
      rssMBPeak: max(seconds.map((x) => use(x)?.rssMB ?? null)),
      rssMBEnd: [...seconds].reverse().find((x) => use(x) !== null)?.processes?.[name]?.rssMB ?? null,
    };
  }
  const costs = Object.values(out);
  if (costs.length > 1) {
    const sum = (f: (c: ProcessCost) => number | null): number | null => (costs.some((c) => f(c) !== null) ? costs.reduce((a, c) => a + (f(c) ?? 0), 0) : null);
    out.total = { cpuPctAvg: sum((c) => c.cpuPctAvg), cpuPctPeak: null, rssMBPeak: sum((c) => c.rssMBPeak), rssMBEnd: sum((c) => c.rssMBEnd) };
  }
  return out;
}

function ramp(ramps: readonly RampStats[] | undefined, connections: number): Pick<Summary['connections'], 'rampS' | 'ratePerS' | 'connectMs'> {
  const connectMs = summarize((ramps ?? []).flatMap((r) => r.connectMs).map(round));
  const starts = (ramps ?? []).map((r) => r.firstOpenAt);
  const ends = (ramps ?? []).map((r) => r.allUpAt);
  if (!ramps || ramps.length === 0 || starts.includes(null) || ends.includes(null)) return { rampS: null, ratePerS: null, connectMs };
  const ms = Math.max(1, max(ends)! - Math.min(...(starts as number[])));
  return { rampS: Math.round(ms) / 1000, ratePerS: round((connections * 1000) / ms), connectMs };
}

/** A number as the tables print it (thousands separated), or '-' when unknown. */
export const fmt = (v: number | null | undefined, unit = ''): string => (v === null || v === undefined ? '-' : `${v.toLocaleString('en-US')}${unit}`);

/** e.g. ` (timeout 120, reset 3)`: the kinds that occurred. */
function errorKindsText(kinds: Record<ConnectErrorKind, number> | undefined): string {
  const seen = CONNECT_ERROR_KINDS.filter((k) => (kinds?.[k] ?? 0) > 0).map((k) => `${k} ${fmt(kinds![k])}`);
  return seen.length > 0 ? ` (${seen.join(', ')})` : '';
}

/** A plain-text table of the summary for the terminal. */
export function summaryTable(s: Summary): string {
  const rows: [string, string][] = [
    [
      'run',
      `${s.run.prefix}: ${s.run.mode} mode, ${fmt(s.run.cars)} cars on ${fmt(s.run.connections)} connections, ${s.run.workers} workers, ${s.run.rateHz} Hz x${s.run.timeScale}, ${s.run.durationS} s`,
    ],
    ['machine', `${s.run.machine.cpus} cores (${s.run.machine.cpuModel}), ${s.run.machine.memGB} GB`],
    [
      'connections',
      `${fmt(s.connections.peakUp)}/${fmt(s.connections.target)} up (all after ${fmt(s.connections.allUpAfterS, ' s')}), ${s.connections.connectErrors} errors${errorKindsText(s.connections.errorKinds)}, ${s.connections.disconnects} drops, ramp ${fmt(s.run.connectRate)}/s${s.run.connectPending ? ` (at most ${fmt(s.run.connectPending)} pending)` : ''}`,
    ],
    // Summaries written before the ramp was timed (older JSONL files) have no ramp row.
    ...(s.connections.connectMs
      ? [
          [
            'connect ramp',
            `${fmt(s.connections.rampS, ' s')} = ${fmt(s.connections.ratePerS)}/s; open -> CONNACK p50 ${fmt(s.connections.connectMs.p50, ' ms')} p99 ${fmt(s.connections.connectMs.p99, ' ms')} max ${fmt(s.connections.connectMs.max, ' ms')}`,
          ] as [string, string],
        ]
      : []),
    ...(s.identities
      ? [
          [
            'certificates',
            `${fmt(s.identities.issued)} ${s.identities.kind} certificates in memory, ${fmt(s.identities.wallMs, ' ms')} (+${fmt(s.identities.setupMs, ' ms')} to load the CA); ${fmt(s.identities.msPer1000, ' ms')} (${fmt(s.identities.cpuMsPer1000, ' CPU ms')}) per 1,000 in one process, + ${fmt(s.identities.contextMsPer1000, ' ms')} per 1,000 for their TLS contexts`,
          ] as [string, string],
        ]
      : []),
    [
      'readings',
      `offered ${fmt(s.readings.offeredPerS)}/s, sent ${fmt(s.readings.sentPerS)}/s, acked ${fmt(s.readings.ackedPerS)}/s (peak ${fmt(s.readings.peakAckedPerS)}/s); ${fmt(s.readings.acked)} acked, ${s.readings.failed} failed, ${s.readings.unrouted} unrouted`,
    ],
    ...STAGES.map((st): [string, string] => [st, `${fmt(s.stages[st].perS)}/s avg, ${fmt(s.stages[st].peakPerS)}/s peak, ${fmt(s.stages[st].records)} offsets`]),
    ...Object.entries(s.lag).map(([g, l]): [string, string] => [`lag ${g}`, `max ${fmt(l.max)}, at the end ${fmt(l.final)}`]),
    [
      'alerts',
      `${s.alerts.received} on ${s.alerts.cars} cars, ${s.alerts.receipts} receipts; window end + grace -> car p50 ${fmt(s.alerts.latencyMs.p50, ' ms')} p99 ${fmt(s.alerts.latencyMs.p99, ' ms')} max ${fmt(s.alerts.latencyMs.max, ' ms')} (n=${s.alerts.latencyMs.count})`,
    ],
    ['detection', `onset -> first alert p50 ${fmt(s.alerts.detectionMs.p50, ' ms')} max ${fmt(s.alerts.detectionMs.max, ' ms')}`],
    ['loadgen', `${s.loadgen.processes} processes, ${s.loadgen.cpuSeconds} CPU s (avg ${s.loadgen.cpuPctAvg}%, peak ${s.loadgen.cpuPctPeak}% of a core), peak RSS ${fmt(s.loadgen.rssMBPeak)} MB`],
    ...Object.entries(s.processes ?? {}).map(([name, c]): [string, string] => [
      `cost ${name}`,
      `CPU avg ${fmt(c.cpuPctAvg, '%')}${c.cpuPctPeak === null ? '' : `, peak ${fmt(c.cpuPctPeak, '%')}`} of a core; RSS peak ${fmt(c.rssMBPeak, ' MB')}, at the end ${fmt(c.rssMBEnd, ' MB')}`,
    ]),
    ['check failures', s.checks.failuresAlerted.ok ? `ok: ${s.failures.length} of ${s.failures.length} alerted` : `MISSED ${s.checks.failuresAlerted.missed.join(', ')}`],
    ['check healthy', s.checks.healthyNotAlerted.ok ? 'ok: no healthy car alerted' : `ALERTED ${s.checks.healthyNotAlerted.cars.join(', ')}`],
    [
      'check telemetry',
      s.checks.telemetry.ok === null
        ? `skipped (${s.checks.telemetry.skipped})`
        : `${s.checks.telemetry.ok ? 'ok' : 'SHORT'}: ${fmt(s.checks.telemetry.acked)} acked, ${fmt(s.checks.telemetry.found)} distinct in topic, ${fmt(s.checks.telemetry.duplicates)} duplicates` +
          (s.checks.telemetry.ok ? '' : `; short: ${s.checks.telemetry.short.map((x) => `${x.vehicleId} ${x.found}/${x.acked}`).join(', ')}`),
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
