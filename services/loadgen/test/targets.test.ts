import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseRunLog } from '../src/report.js';
import type { Summary } from '../src/summary.js';
import { readSummaries } from '../src/sweep.js';
import { costTable, lagBounded, lostOf, targetsMarkdown, verdicts } from '../src/targets.js';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/small-run.jsonl', import.meta.url));
const base = parseRunLog(readFileSync(FIXTURE, 'utf8')).summary!;

/** A summary of `cars` cars at 1 Hz for `durationS`, every check passed, with the given changes. */
function runOf(cars: number, durationS: number, patch: (s: Summary) => void = () => {}): Summary {
  const s = structuredClone(base);
  s.run = { ...s.run, prefix: `p${cars}x${durationS}`, mode: 'car', cars, connections: cars, rateHz: 1, timeScale: 1, durationS, windowMs: 10_000, graceMs: 2_000 };
  s.connections = { ...s.connections, target: cars, peakUp: cars };
  s.readings = { ...s.readings, offeredPerS: cars, ackedPerS: cars, acked: cars * durationS };
  s.stages.telemetry = { records: cars * durationS, perS: cars, peakPerS: cars };
  s.lag = { 'pitwall-windowing': { max: cars * 12, final: cars * 10 } };
  s.alerts.latencyMs = { count: 3, p50: 500, p99: 800, max: 900 };
  s.checks = {
    failuresAlerted: { ok: true, missed: [] },
    healthyNotAlerted: { ok: true, cars: [] },
    telemetry: { ok: true, acked: cars * durationS, found: cars * durationS, records: cars * durationS, duplicates: 0, missing: 0, short: [] },
  };
  s.loadgen = { ...s.loadgen, cpuPctAvg: 90 };
  s.processes = {
    ingest: { cpuPctAvg: 30, cpuPctPeak: 40, rssMBPeak: 200, rssMBEnd: 190 },
    windowing: { cpuPctAvg: 20, cpuPctPeak: 30, rssMBPeak: 250, rssMBEnd: 240 },
    kafka: { cpuPctAvg: 40, cpuPctPeak: 70, rssMBPeak: 600, rssMBEnd: 600 },
    mosquitto: { cpuPctAvg: 25, cpuPctPeak: 50, rssMBPeak: 140, rssMBEnd: 140 },
    total: { cpuPctAvg: 115, cpuPctPeak: null, rssMBPeak: 1190, rssMBEnd: 1170 },
  };
  patch(s);
  return s;
}

test('a row per run: services and brokers summed apart from the load generator, lost of acked, latency in seconds', () => {
  const table = costTable([runOf(5_000, 90)]).split('\n');
  assert.equal(table.length, 3);
  const cells = table[2]!.split(' | ');
  assert.match(
    table[2]!,
    /^\| 5,000 cars \| 1 Hz × 90 s \| 5,000 \/ 5,000 \| 5,000 \/ 5,000 \/ 5,000 \| 50 % \| 65 % \| 90 % \| 450 \| 0 of 450,000 \| 0\.5 \/ 0\.8 \(n = 3\) \| 60,000 \/ 50,000 \| 2\/2 alerted, no false alert, 0 dup \|$/,
  );
  assert.equal(cells.length, 12);
});

test('lost: 0 when the check passed, the sum over every short car otherwise, unknown without the count', () => {
  assert.equal(lostOf(runOf(10, 10)), 0);
  const short = runOf(10, 10, (s) => {
    s.checks.telemetry = { ok: false, acked: 100, found: 60, records: 60, duplicates: 0, missing: 40, short: [{ vehicleId: 'a', acked: 10, found: 0 }] };
  });
  assert.equal(lostOf(short), 40, 'missing counts cars beyond the 20 listed');
  const older = runOf(10, 10, (s) => {
    s.checks.telemetry = {
      ok: false,
      acked: 100,
      found: 85,
      records: 85,
      duplicates: 0,
      short: [
        { vehicleId: 'a', acked: 10, found: 0 },
        { vehicleId: 'b', acked: 10, found: 5 },
      ],
    };
  });
  assert.equal(lostOf(older), 15, 'a file without missing sums its short list');
  assert.equal(lostOf(runOf(10, 10, (s) => void (s.checks.telemetry = { ok: null, skipped: '--no-verify' }))), null);
});

test('windowing lag is bounded by two windows plus grace of the fleet readings', () => {
  assert.equal(lagBounded(runOf(1_000, 60, (s) => void (s.lag['pitwall-windowing']!.final = 24_000))), true);
  assert.equal(lagBounded(runOf(1_000, 60, (s) => void (s.lag['pitwall-windowing']!.final = 24_001))), false);
  assert.equal(lagBounded(runOf(1_000, 60, (s) => void (s.lag = {}))), null);
});

test('verdicts: the 15,000-car targets are decided by a 1 Hz run of 15,000 connections', () => {
  const keys = { '15k': '15,000 car connections', p99: 'p99 window end', cost: 'cost at 1k', ref: '100,000 vehicles' } as const;
  const byTarget = (runs: Summary[]) => Object.fromEntries(Object.entries(keys).map(([k, start]) => [k, verdicts(runs).find((v) => v.target.startsWith(start))!]));
  const none = byTarget([runOf(1_000, 90), runOf(5_000, 90)]);
  assert.equal(none['15k']!.status, 'not run');
  assert.equal(none.p99!.status, 'not run');
  assert.equal(none.cost!.status, 'not met');
  assert.match(none.cost!.detail, /runs at 1,000, 5,000 of/);

  const short = byTarget([runOf(15_000, 354, (s) => void (s.alerts.latencyMs.p99 = 226_000))]);
  assert.equal(short['15k']!.status, 'not met');
  assert.match(short['15k']!.detail, /354 s, not 10 min/);
  assert.equal(short.p99!.status, 'not met');
  assert.match(short.p99!.detail, /p99 226\.0 s/);

  const lost = byTarget([runOf(15_000, 600, (s) => void (s.checks.telemetry = { ok: false, acked: 9, found: 2, records: 2, duplicates: 0, missing: 7, short: [] }))]);
  assert.equal(lost['15k']!.status, 'not met');
  assert.match(lost['15k']!.detail, /7 acknowledged readings lost/);

  const missed = byTarget([runOf(15_000, 600, (s) => void (s.checks.failuresAlerted = { ok: false, missed: ['car-1'] }))]);
  assert.match(missed['15k']!.detail, /failures missed: car-1/);

  const met = byTarget([runOf(1_000, 90), runOf(5_000, 90), runOf(10_000, 90), runOf(15_000, 600)]);
  assert.equal(met['15k']!.status, 'met');
  assert.equal(met.p99!.status, 'met');
  assert.equal(met.cost!.status, 'met');
  assert.equal(met.ref!.status, 'not run');
});

test('verdicts: the reference workload is 100,000 vehicles at 0.1 Hz over at most 15,000 connections', () => {
  const gateway = (connections: number, patch: (s: Summary) => void = () => {}) =>
    runOf(100_000, 180, (s) => {
      s.run = { ...s.run, mode: 'gateway', connections, rateHz: 0.1 };
      s.connections = { ...s.connections, target: connections, peakUp: connections };
      s.lag['pitwall-windowing']!.final = 10_000;
      patch(s);
    });
  const v = (runs: Summary[]) => verdicts(runs).find((x) => x.target.startsWith('100,000'))!;
  assert.equal(v([gateway(2_000)]).status, 'met');
  assert.equal(v([gateway(20_000)]).status, 'not run', 'more connections than the target allows');
  const behind = v([gateway(2_000, (s) => void (s.lag['pitwall-windowing']!.final = 857_550))]);
  assert.equal(behind.status, 'not met');
  assert.match(behind.detail, /windowing lag 857,550 at the end/);
});

test('the Markdown names the machine and the dates, then the table and one line per target', () => {
  const md = targetsMarkdown([runOf(1_000, 90)]);
  assert.match(md, /^Load test runs of 2026-12-02 on 2 cores \(Intel\(R\) Xeon\(R\) Processor\), 24 GB;/);
  assert.equal(md.split('\n').filter((l) => l.startsWith('- **')).length, 4);
});

test('readSummaries: the summary of a finished run; a missing or unfinished file is named', () => {
  const { summaries, missing } = readSummaries([FIXTURE, '/nonexistent/run.jsonl']);
  assert.equal(summaries.length, 1);
  assert.equal(summaries[0]!.run.prefix, base.run.prefix);
  assert.deepEqual(missing, ['/nonexistent/run.jsonl']);
});
