import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, type RunOptions } from '../src/args.js';
import { zeroCounters, type AlertEvent } from '../src/messages.js';
import { makeClock, planFailures } from '../src/plan.js';
import { secondRecord, formatLine, type Totals } from '../src/second.js';
import { buildSummary, summaryTable } from '../src/summary.js';

const o = parseArgs(['--cars', '4', '--failures', '2', '--duration', '10', '--failure-at', '5', '--prefix', 'p'], {}) as RunOptions;
const clock = makeClock(1_000_000, 10_000, 1);
const failures = planFailures(o, clock);
const offsets = (n: number) => ({ telemetry: n, features: n / 10, scores: n / 10, alerts: 0, incidents: 0 });
const totals = (at: number, sent: number): Totals => ({
  at,
  counters: { ...zeroCounters(), target: 4, up: 4, sent, acked: sent },
  offsets: offsets(sent),
  probeAt: at,
  lag: { 'pitwall-windowing': 10, 'pitwall-scoring': 0, 'pitwall-incidents': 0, 'pitwall-dispatch': null },
  alertedCars: 0,
  latency: { count: 0, p50: null, p99: null, max: null },
  cpuUs: (at - 1_000_000) * 100,
  rss: 100 * 2 ** 20,
  // ingest: half a core and 200 MB; kafka answers only from the third second on.
  processes: {
    at,
    processes: {
      ingest: { cpuS: (at - 1_000_000) / 2000, rssBytes: 200 * 2 ** 20 },
      kafka: at >= 1_003_000 ? { cpuS: (at - 1_000_000) / 4000, rssBytes: 1000 * 2 ** 20 } : null,
      gone: null,
    },
  },
});
const seconds = Array.from({ length: 12 }, (_, k) =>
  secondRecord(k + 1, k + 1 > 10 ? 'drain' : 'run', totals(1_000_000 + (k + 1) * 1000, Math.min(k + 1, 10) * 4), totals(1_000_000 + k * 1000, Math.min(k, 10) * 4)),
);
const alert = (vehicleId: string, receivedAt: number): AlertEvent => ({
  vehicleId,
  incidentId: `i-${vehicleId}`,
  revision: 1,
  severity: 'LOW',
  area: 'cooling',
  openedAt: clock.eventStart + 5000,
  receivedAt,
});

test('per-second record: the CPU of each process between samples, and its memory', () => {
  assert.deepEqual(seconds[1]!.processes, { ingest: { cpuPct: 50, rssMB: 200 }, kafka: null, gone: null });
  // kafka's first sample has nothing to compare with
  assert.deepEqual(seconds[2]!.processes!.kafka, { cpuPct: null, rssMB: 1000 });
  assert.deepEqual(seconds[3]!.processes!.kafka, { cpuPct: 25, rssMB: 1000 });
  assert.match(formatLine(seconds[3]!), /\| ingest 50% 200M kafka 25% 1000M$/);
});

test('summary: cost per process over the steady seconds, and their total', () => {
  const s = buildSummary({ options: o, clock, failures, seconds, baseline: offsets(0), alerts: [], counters: zeroCounters(), ackedByCar: {}, telemetry: { skipped: 'x' }, cpuUs: 0, processes: 1 });
  assert.deepEqual(s.processes, {
    ingest: { cpuPctAvg: 50, cpuPctPeak: 50, rssMBPeak: 200, rssMBEnd: 200 },
    kafka: { cpuPctAvg: 25, cpuPctPeak: 25, rssMBPeak: 1000, rssMBEnd: 1000 },
    total: { cpuPctAvg: 75, cpuPctPeak: null, rssMBPeak: 1200, rssMBEnd: 1200 },
  });
  assert.match(summaryTable(s), /cost ingest +CPU avg 50%, peak 50% of a core; RSS peak 200 MB, at the end 200 MB/);
  assert.match(summaryTable(s), /cost total +CPU avg 75% of a core; RSS peak 1,200 MB/);
});

test('per-second record: rates from the totals, printed on one line', () => {
  const r = seconds[1]!;
  assert.equal(r.readings.sentPerS, 4);
  assert.equal(r.stages.telemetry.perS, 4);
  assert.equal(r.loadgen.cpuPct, 10);
  assert.match(formatLine(r), /^t=2s run conn 4\/4 \| sent 4\/s acked 4\/s fail 0 infl 0 \| tel 4\/s .* lag windowing 10 scoring 0 incidents 0 dispatch - \|/);
});

test('summary checks: a missed failure, an alerted healthy car and a car short of readings are listed', () => {
  const [f1, f2] = failures.map((f) => f.vehicleId);
  const healthy = 'p-00001-0001';
  const s = buildSummary({
    options: o,
    clock,
    failures,
    seconds,
    baseline: offsets(0),
    alerts: [alert(f1!, 1_000_000 + 17_000), alert(healthy, 1_000_000 + 18_000)],
    counters: { ...zeroCounters(), sent: 40, acked: 40, alerts: 2 },
    ackedByCar: { [healthy]: 10, [f1!]: 10, [f2!]: 10, 'p-00004-0001': 10 },
    telemetry: {
      records: 40,
      distinct: 39,
      duplicates: 1,
      byCar: new Map([
        [healthy, 10],
        [f1!, 10],
        [f2!, 10],
        ['p-00004-0001', 9],
      ]),
    },
    cpuUs: 2e6,
    processes: 2,
  });
  assert.equal(s.ok, false);
  assert.deepEqual(s.checks.failuresAlerted, { ok: false, missed: [f2] });
  assert.deepEqual(s.checks.healthyNotAlerted, { ok: false, cars: [healthy] });
  assert.equal(s.checks.telemetry.ok, false);
  assert.deepEqual('short' in s.checks.telemetry && s.checks.telemetry.short, [{ vehicleId: 'p-00004-0001', acked: 10, found: 9 }]);
  assert.equal('missing' in s.checks.telemetry && s.checks.telemetry.missing, 1);
  assert.equal(s.failures[0]!.detectionMs, 12_000, 'onset at +5 s, alert at +17 s');
  assert.deepEqual(s.alerts.latencyMs, { count: 2, p50: 0, p99: 1000, max: 1000 }, 'window [5 s, 15 s) ends at +15 s and closes at +17 s (grace 2 s)');
  assert.equal(s.stages.telemetry.records, 40);
  assert.equal(s.stages.telemetry.perS, 4);
  assert.equal(s.readings.ackedPerS, 4);
  assert.match(summaryTable(s), /check failures\s+MISSED p-/);
});

test('summary: when some connections never came up, rates come from the seconds near the most that were up', () => {
  // 3 of 4 cars connect and publish; the fourth never does, so no second is in the run phase.
  const partial = (at: number, sent: number, up: number): Totals => ({ ...totals(at, sent), counters: { ...zeroCounters(), target: 4, up, sent, acked: sent } });
  const ramp = Array.from({ length: 12 }, (_, k) => {
    const up = k < 2 ? k + 1 : 3;
    const prevUp = k < 3 ? k : 3;
    const phase = k + 1 > 10 ? ('drain' as const) : ('ramp' as const);
    return secondRecord(k + 1, phase, partial(1_000_000 + (k + 1) * 1000, Math.min(k + 1, 10) * 3, up), partial(1_000_000 + k * 1000, Math.min(k, 10) * 3, prevUp));
  });
  const s = buildSummary({
    options: o,
    clock,
    failures,
    seconds: ramp,
    baseline: offsets(0),
    alerts: [],
    counters: zeroCounters(),
    ackedByCar: {},
    telemetry: { skipped: 'x' },
    cpuUs: 0,
    processes: 1,
  });
  assert.equal(s.connections.peakUp, 3);
  assert.equal(s.readings.ackedPerS, 3, 'the seconds with 3 up (none with all 4)');
  assert.equal(s.processes?.ingest?.cpuPctAvg, 50);
});

test('summary: all checks pass; a skipped count does not fail the run', () => {
  const s = buildSummary({
    options: o,
    clock,
    failures,
    seconds,
    baseline: offsets(0),
    alerts: failures.map((f) => alert(f.vehicleId, 1_000_000 + 16_000)),
    counters: { ...zeroCounters(), sent: 40, acked: 40 },
    ackedByCar: {},
    telemetry: { skipped: '--no-verify' },
    cpuUs: 1e6,
    processes: 2,
  });
  assert.equal(s.ok, true);
  assert.match(summaryTable(s), /check telemetry\s+skipped \(--no-verify\)/);
});

test('summary: the connect ramp over the workers, and the certificates issued for it', () => {
  const base = { options: o, clock, failures, seconds, baseline: offsets(0), alerts: [], counters: zeroCounters(), ackedByCar: {}, telemetry: { skipped: 'x' }, cpuUs: 1e6, processes: 3 };
  const s = buildSummary({
    ...base,
    ramps: [
      { firstOpenAt: 1_000_000, allUpAt: 1_001_500, connectMs: [10, 20] },
      { firstOpenAt: 1_000_100, allUpAt: 1_002_000, connectMs: [30, 40] },
    ],
    identities: { kind: 'car', issued: 4, setupMs: 200, wallMs: 30, msPer1000: 7000, cpuMsPer1000: 6500, contextMsPer1000: 2000 },
  });
  // o has 4 connections: first opened at 1,000,000, last up at 1,002,000.
  assert.deepEqual([s.connections.rampS, s.connections.ratePerS], [2, 2]);
  assert.deepEqual(s.connections.connectMs, { count: 4, p50: 20, p99: 40, max: 40 });
  assert.match(summaryTable(s), /connect ramp\s+2 s = 2\/s; open -> CONNACK p50 20 ms p99 40 ms/);
  assert.match(
    summaryTable(s),
    /certificates\s+4 car certificates in memory, 30 ms \(\+200 ms to load the CA\); 7,000 ms \(6,500 CPU ms\) per 1,000 in one process, \+ 2,000 ms per 1,000 for their TLS contexts/,
  );

  const partial = buildSummary({ ...base, ramps: [{ firstOpenAt: 1_000_000, allUpAt: null, connectMs: [10] }] });
  assert.deepEqual([partial.connections.rampS, partial.connections.ratePerS, partial.identities], [null, null, null]);
  assert.doesNotMatch(summaryTable(partial), /certificates/);
});
