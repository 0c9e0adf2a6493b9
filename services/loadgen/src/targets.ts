/**
 * The fleet-scale table: one row per load test run (its summary line) and the targets those runs
 * meet or miss, as Markdown for the README. Pure.
 *
 * A run's cost splits into the services (Pitwall's own processes), the brokers (Kafka, Mosquitto,
 * HiveMQ, Apicurio) and the load generator, each in % of one core averaged over the steady seconds.
 * "Lost" is what cars got a PUBACK for and the telemetry topic does not hold (the run's check).
 */
import { fmt, type Summary } from './summary.js';

const SERVICES = ['ingest', 'windowing', 'scoring', 'incidents', 'dispatch', 'console'];
const BROKERS = ['kafka', 'mosquitto', 'hivemq', 'apicurio'];

const n = (v: number | null | undefined): string => fmt(v === null || v === undefined ? v : Math.round(v));
const s1 = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : (ms / 1000).toFixed(1));
const pct = (v: number | null): string => fmt(v === null ? v : Math.round(v), ' %');

/** Sum of the named processes' field; null when none of them answered. */
function sumOf(s: Summary, names: readonly string[], field: 'cpuPctAvg' | 'rssMBPeak'): number | null {
  let total: number | null = null;
  for (const name of names) {
    const v = s.processes?.[name]?.[field];
    if (v !== null && v !== undefined) total = (total ?? 0) + v;
  }
  return total;
}

/** Readings acknowledged to cars and not in the telemetry topic; null when the run did not count them. */
export function lostOf(s: Summary): number | null {
  const t = s.checks.telemetry;
  if (t.ok === null) return null;
  if (t.ok) return 0;
  // `missing` sums every short car; files written before it existed list at most 20 short cars.
  return t.missing ?? t.short.reduce((a, x) => a + x.acked - x.found, 0);
}

/**
 * Windowing's lag at the end of the drain is bounded when it is at most two windows (plus grace) of
 * the fleet's readings: what windowing holds back for open windows, not a backlog.
 */
export function lagBounded(s: Summary): boolean | null {
  const final = s.lag['pitwall-windowing']?.final ?? Object.values(s.lag)[0]?.final ?? null;
  if (final === null || final === undefined) return null;
  const windowS = (s.run.windowMs ?? 10_000) / 1000 + (s.run.graceMs ?? 2_000) / 1000;
  return final <= 2 * s.run.cars * s.run.rateHz * s.run.timeScale * windowS;
}

const label = (s: Summary): string => (s.run.mode === 'car' ? `${n(s.run.cars)} cars` : `${n(s.run.cars)} cars over ${n(s.run.connections)} gateways`);

/** The Markdown table, one row per run, in the order given. */
export function costTable(runs: readonly Summary[]): string {
  const head = [
    'run',
    'rate × duration',
    'up',
    'offered / acked / into Kafka (/s)',
    'services CPU',
    'brokers CPU',
    'load generator CPU',
    'services RSS (MB)',
    'lost of acked',
    'window end + grace → car p50 / p99 (s)',
    'windowing lag max / end',
    'checks',
  ];
  const rows = runs.map((s) => {
    const lost = lostOf(s);
    const windowing = s.lag['pitwall-windowing'];
    const checks = [
      s.checks.failuresAlerted.ok ? `${s.failures.length}/${s.failures.length} alerted` : `missed ${s.checks.failuresAlerted.missed.length}`,
      s.checks.healthyNotAlerted.ok ? 'no false alert' : `${s.checks.healthyNotAlerted.cars.length} healthy alerted`,
      s.checks.telemetry.ok === null ? 'not counted' : s.checks.telemetry.ok ? `${n(s.checks.telemetry.duplicates)} dup` : 'SHORT',
    ].join(', ');
    return [
      label(s),
      `${s.run.rateHz} Hz × ${n(s.run.durationS)} s`,
      `${n(s.connections.peakUp)} / ${n(s.connections.target)}`,
      `${n(s.readings.offeredPerS)} / ${n(s.readings.ackedPerS)} / ${n(s.stages.telemetry.perS)}`,
      pct(sumOf(s, SERVICES, 'cpuPctAvg')),
      pct(sumOf(s, BROKERS, 'cpuPctAvg')),
      pct(s.loadgen.cpuPctAvg),
      n(sumOf(s, SERVICES, 'rssMBPeak')),
      lost === null ? 'not counted' : `${n(lost)} of ${n(s.readings.acked)}`,
      `${s1(s.alerts.latencyMs.p50)} / ${s1(s.alerts.latencyMs.p99)} (n = ${s.alerts.latencyMs.count})`,
      `${n(windowing?.max)} / ${n(windowing?.final)}`,
      checks,
    ];
  });
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export interface Verdict {
  target: string;
  status: 'met' | 'not met' | 'not run';
  /** Which run decided, and why not when it did not. */
  detail: string;
}

/** Runs that every check passed, nothing lost, lag bounded: the whole chain kept up. */
function keptUp(s: Summary): string[] {
  const why: string[] = [];
  if (s.connections.peakUp < s.connections.target) why.push(`${n(s.connections.peakUp)} of ${n(s.connections.target)} connections up`);
  if (!s.checks.failuresAlerted.ok) why.push(`failures missed: ${s.checks.failuresAlerted.missed.join(', ')}`);
  const lost = lostOf(s);
  if (lost === null) why.push('readings not counted (--no-verify)');
  else if (lost > 0) why.push(`${n(lost)} acknowledged readings lost`);
  if (lagBounded(s) === false) why.push(`windowing lag ${n(s.lag['pitwall-windowing']?.final)} at the end`);
  return why;
}

/** The run that best answers a target: the first that meets it, else the largest that tried. */
function decide(target: string, tried: readonly Summary[], failing: (s: Summary) => string[]): Verdict {
  if (tried.length === 0) return { target, status: 'not run', detail: 'no run of that size in these files' };
  const met = tried.find((s) => failing(s).length === 0);
  if (met) return { target, status: 'met', detail: `${met.run.prefix}: ${label(met)}, ${met.run.durationS} s` };
  const best = [...tried].sort((a, b) => b.run.cars - a.run.cars || b.run.durationS - a.run.durationS)[0]!;
  return { target, status: 'not met', detail: `${best.run.prefix}: ${failing(best).join('; ')}` };
}

/** The fleet-scale targets that load test runs decide (the benchmarks decide the others). */
export function verdicts(runs: readonly Summary[]): Verdict[] {
  const cars15k = runs.filter((s) => s.run.mode === 'car' && s.run.connections >= 15_000 && s.run.rateHz >= 1);
  const tenMinutes = (s: Summary): string[] => [...(s.run.durationS >= 600 ? [] : [`${s.run.durationS} s, not 10 min`]), ...keptUp(s)];
  const p99 = (s: Summary): string[] => {
    const v = s.alerts.latencyMs.p99;
    return v === null ? ['no alert latency measured'] : v < 1000 ? [] : [`p99 ${s1(v)} s`];
  };
  const reference = runs.filter((s) => s.run.cars >= 100_000 && s.run.rateHz >= 0.1 && s.run.connections <= 15_000);
  const sizes = [1_000, 5_000, 10_000, 15_000];
  const costRows = sizes.filter((c) => runs.some((s) => s.run.mode === 'car' && s.run.cars === c));
  return [
    decide('15,000 car connections at 1 Hz through the whole chain for 10 min: lag bounded, 0 lost, every failure alerted', cars15k, tenMinutes),
    decide('p99 window end + grace → alert on the car < 1 s at 15,000 cars', cars15k, p99),
    decide('100,000 vehicles at 0.1 Hz over ≤ 15,000 connections through the whole chain: lag bounded, 0 lost', reference, keptUp),
    {
      target: 'cost at 1k, 5k, 10k and 15k cars in one table',
      status: costRows.length === sizes.length ? 'met' : costRows.length === 0 ? 'not run' : 'not met',
      detail: `runs at ${costRows.map((c) => n(c)).join(', ') || 'none'} of ${sizes.map((c) => n(c)).join(', ')} cars`,
    },
  ];
}

/** The table, the machine it ran on and the verdicts, as one Markdown section. */
export function targetsMarkdown(runs: readonly Summary[]): string {
  const machines = [...new Set(runs.map((s) => `${s.run.machine.cpus} cores (${s.run.machine.cpuModel}), ${s.run.machine.memGB} GB`))];
  const dates = [...new Set(runs.map((s) => s.run.startedAt.slice(0, 10)))];
  return [
    `Load test runs of ${dates.join(', ')} on ${machines.join('; ')}; CPU in % of one core, averaged over the steady seconds.`,
    '',
    costTable(runs),
    '',
    ...verdicts(runs).map((v) => `- **${v.status}**: ${v.target} (${v.detail})`),
  ].join('\n');
}
