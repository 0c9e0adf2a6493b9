/**
 * The once-a-second record (one JSON line in the output file) and the line printed for it. Pure:
 * built from cumulative totals now and a second ago.
 */
import { errorKindsOf, type ConnectErrorKind } from './connect-errors.js';
import type { Counters } from './messages.js';
import type { Stage } from './kafka-probe.js';
import { STAGES } from './kafka-probe.js';
import type { LatencySummary } from './percentiles.js';
import { processUse, type ProcessSample, type ProcessUse } from './process-probe.js';

export type Phase = 'ramp' | 'run' | 'drain';

export interface Totals {
  at: number;
  counters: Counters;
  offsets: Record<Stage, number | null>;
  /** When offsets and lag were sampled (Kafka is sampled in a loop of its own). */
  probeAt: number;
  lag: Record<string, number | null>;
  /** Cars that got at least one alert. */
  alertedCars: number;
  latency: LatencySummary;
  /** CPU microseconds of the load generator's processes (coordinator + workers). */
  cpuUs: number;
  rss: number;
  /** Services' and local brokers' CPU and memory (sampled in a loop of its own). */
  processes: { at: number; processes: Record<string, ProcessSample | null> };
}

export interface SecondRecord {
  type: 'second';
  t: number;
  at: string;
  phase: Phase;
  connections: {
    up: number;
    target: number;
    connects: number;
    errors: number;
    /** errors by kind (connect-errors.ts). */
    errorKinds: Record<ConnectErrorKind, number>;
    disconnects: number;
  };
  readings: { sent: number; acked: number; failed: number; unrouted: number; inFlight: number; sentPerS: number; ackedPerS: number };
  stages: Record<Stage, { offset: number | null; perS: number | null }>;
  lag: Record<string, number | null>;
  alerts: { received: number; cars: number; receipts: number; duplicates: number };
  /** End of the incident's first anomalous window -> alert on the car, over the run so far. */
  latencyMs: LatencySummary;
  loadgen: { cpuPct: number; rssMB: number };
  /** Per service and local broker: % of one core and resident MB (null: not answering). Absent in files of older runs. */
  processes?: Record<string, ProcessUse | null>;
}

export function secondRecord(t: number, phase: Phase, now: Totals, prev: Totals): SecondRecord {
  const dt = Math.max(1e-3, (now.at - prev.at) / 1000);
  const rate = (a: number, b: number): number => Math.round((a - b) / dt);
  const c = now.counters;
  // Stage rates use the samples' own times; no new sample since the last line gives no rate.
  const probeDt = (now.probeAt - prev.probeAt) / 1000;
  const stages = {} as SecondRecord['stages'];
  for (const s of STAGES) {
    const a = now.offsets[s];
    const b = prev.offsets[s];
    stages[s] = { offset: a, perS: a === null || b === null || probeDt <= 0 ? null : Math.round((a - b) / probeDt) };
  }
  return {
    type: 'second',
    t,
    at: new Date(now.at).toISOString(),
    phase,
    connections: {
      up: c.up,
      target: c.target,
      connects: c.connects,
      errors: c.connectErrors,
      errorKinds: errorKindsOf(c),
      disconnects: c.disconnects,
    },
    readings: {
      sent: c.sent,
      acked: c.acked,
      failed: c.failed,
      unrouted: c.unrouted,
      inFlight: c.sent - c.acked - c.failed - c.unrouted,
      sentPerS: rate(c.sent, prev.counters.sent),
      ackedPerS: rate(c.acked, prev.counters.acked),
    },
    stages,
    lag: { ...now.lag },
    alerts: { received: c.alerts, cars: now.alertedCars, receipts: c.receipts, duplicates: c.duplicateAlerts },
    latencyMs: now.latency,
    loadgen: { cpuPct: Math.round((now.cpuUs - prev.cpuUs) / 1e4 / dt), rssMB: Math.round(now.rss / 2 ** 20) },
    processes: processesUse(now.processes, prev.processes),
  };
}

function processesUse(now: Totals['processes'], prev: Totals['processes']): NonNullable<SecondRecord['processes']> {
  const dtS = (now.at - prev.at) / 1000;
  const out: NonNullable<SecondRecord['processes']> = {};
  for (const [name, sample] of Object.entries(now.processes)) out[name] = processUse(sample, dtS > 0 ? (prev.processes[name] ?? null) : null, dtS);
  return out;
}

const n = (v: number | null): string => (v === null ? '-' : String(v));
const SHORT: Record<Stage, string> = { telemetry: 'tel', features: 'feat', scores: 'score', alerts: 'alert', incidents: 'inc' };

/** e.g. `t=12s run conn 500/500 | sent 498/s acked 497/s fail 0 infl 3 | tel 497/s feat 50/s ... | lag ... | alerts 1 (1 cars) p50 2100 ms | cpu 31% 180 MB` */
export function formatLine(r: SecondRecord): string {
  const stages = STAGES.map((s) => `${SHORT[s]} ${n(r.stages[s].perS)}/s`).join(' ');
  const lag = Object.entries(r.lag)
    .map(([g, v]) => `${g.replace(/^.*[.-]/, '')} ${n(v)}`)
    .join(' ');
  const lat = r.latencyMs.count > 0 ? ` p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms` : '';
  return (
    `t=${r.t}s ${r.phase} conn ${r.connections.up}/${r.connections.target}${r.connections.errors > 0 ? ` err ${r.connections.errors}` : ''} | ` +
    `sent ${r.readings.sentPerS}/s acked ${r.readings.ackedPerS}/s fail ${r.readings.failed + r.readings.unrouted} infl ${r.readings.inFlight} | ` +
    `${stages} | lag ${lag} | alerts ${r.alerts.received} (${r.alerts.cars} cars)${lat} | cpu ${r.loadgen.cpuPct}% ${r.loadgen.rssMB} MB` +
    processesText(r.processes)
  );
}

/** e.g. ` | ingest 52% 180M kafka 40% 1200M` (services and brokers answering). */
function processesText(p: SecondRecord['processes']): string {
  const parts = Object.entries(p ?? {}).flatMap(([name, u]) => (u ? [`${name} ${u.cpuPct ?? '-'}% ${u.rssMB}M`] : []));
  return parts.length === 0 ? '' : ` | ${parts.join(' ')}`;
}
