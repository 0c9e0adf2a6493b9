import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRunLog, renderCharts, renderHtml, writeReport } from '../src/report.js';
import { niceTicks } from '../src/svg.js';

// dist/test/ -> test/fixtures/
const FIXTURE = fileURLToPath(new URL('../../test/fixtures/small-run.jsonl', import.meta.url));

test('a small run renders to a self-contained page with every series', () => {
  const log = parseRunLog(readFileSync(FIXTURE, 'utf8'));
  assert.equal(log.seconds.length, 12);
  assert.ok(log.summary);
  const html = renderHtml(log);
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no scripts, no external resources');
  for (const series of ['sent', 'acknowledged', 'telemetry', 'features', 'scores', 'alerts', 'incidents', 'p50', 'p99', 'connections up', ...Object.keys(log.seconds[0]!.lag)]) {
    assert.match(html, new RegExp(`<polyline data-series="${series.replace(/\./g, '\\.')}"`), `series ${series}`);
  }
  assert.match(html, /publishing stops/);
  assert.match(html, /check telemetry\s+ok/);
  // The acknowledged line has a point per second.
  const acked = /<polyline data-series="acknowledged"[^>]* points="([^"]+)"/.exec(renderCharts(log))![1]!;
  assert.equal(acked.split(' ').length, 12);
});

test('a run that sampled its processes gets a CPU panel; older files do not', () => {
  const log = parseRunLog(readFileSync(FIXTURE, 'utf8'));
  assert.doesNotMatch(renderCharts(log), /CPU, % of one core/);
  const seconds = log.seconds.map((r, i) => ({ ...r, processes: { ingest: { cpuPct: 10 + i, rssMB: 100 }, kafka: i < 2 ? null : { cpuPct: 40, rssMB: 600 } } }));
  const svg = renderCharts({ ...log, seconds });
  assert.match(svg, /CPU, % of one core/);
  for (const series of ['ingest', 'kafka', 'load generator']) assert.match(svg, new RegExp(`<polyline data-series="${series}"`), `series ${series}`);
});

test('writeReport writes the page and the standalone SVG next to the input', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadgen-report-'));
  const input = path.join(dir, 'run.jsonl');
  copyFileSync(FIXTURE, input);
  const { html, svg } = writeReport(input);
  assert.equal(html, path.join(dir, 'run.html'));
  assert.equal(svg, path.join(dir, 'run.svg'));
  assert.match(readFileSync(svg, 'utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
});

test('a file without per-second records is refused', () => {
  assert.throws(() => parseRunLog('{"type":"start"}\n'), /no per-second records/);
  assert.throws(() => parseRunLog('{"type":"second"\n'), /line 1 is not JSON/);
});

test('axis ticks are round numbers covering the maximum', () => {
  assert.deepEqual(niceTicks(523), [0, 200, 400, 600]);
  assert.deepEqual(niceTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0), [0, 1]);
});
