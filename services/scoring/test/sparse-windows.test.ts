import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSparseWindowNotice } from '../src/sparse-windows.js';

const WINDOW = { sizeMs: 10_000, rateHz: 1 };

test('sparse windows are judged per minute: a warning when most were skipped, an error when none was scored', () => {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const log = {
    warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'warn', msg, fields: fields ?? {} }),
    error: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'error', msg, fields: fields ?? {} }),
  };
  let t = 0;
  const notice = createSparseWindowNotice(log, () => t, 60_000);
  // [time, event counts skipped, scored] -> lines written so far
  const table: [number, number[], number, number][] = [
    [0, [6, 6, 6], 0, 0], // cars starting: partial first windows, nothing said yet
    [10_000, [6], 40, 0],
    [60_000, [], 40, 0], // a minute: 4 skipped, 80 scored: the normal edges of driving, silent
    [70_000, [1, 2], 0, 0], // a fleet reporting every ~10 s
    [100_000, [1], 0, 0],
    [120_000, [3], 0, 1], // a minute with nothing scored: error
    [150_000, [2, 2, 2], 1, 1],
    [180_000, [2], 1, 2], // most skipped, some scored: warning
  ];
  for (const [at, skipped, scored, expectedLines] of table) {
    t = at;
    notice.observe({ skipped: skipped.map((events, i) => ({ vehicleId: `car-${i}`, events })), scored, minEvents: 8, window: WINDOW });
    assert.equal(lines.length, expectedLines, `after t=${at}`);
  }
  assert.equal(lines[0]!.level, 'error');
  assert.match(lines[0]!.msg, /nothing is scored/);
  assert.deepEqual({ skipped: lines[0]!.fields.skipped, scored: lines[0]!.fields.scored, seconds: lines[0]!.fields.seconds }, { skipped: 4, scored: 0, seconds: 60 });
  assert.deepEqual(lines[0]!.fields.readingsPerWindow, { min: 1, max: 3 });
  // 70 s: car-0, car-1; 100 s: car-0; 120 s: car-0.
  assert.equal(lines[0]!.fields.cars, 2);
  assert.deepEqual(lines[0]!.fields.mostSkipped, ['car-0: 3', 'car-1: 1']);
  assert.equal(lines[0]!.fields.minReadings, 8);
  assert.match(String(lines[0]!.fields.hint), /needs 8 readings per 10 s window \(trained at 1 Hz\)/);
  assert.equal(lines[1]!.level, 'warn');
  assert.deepEqual({ skipped: lines[1]!.fields.skipped, scored: lines[1]!.fields.scored }, { skipped: 4, scored: 2 });
});

test('a sparse fleet: the line counts every car and names the ten with the most skipped windows', () => {
  const lines: Record<string, unknown>[] = [];
  const log = { warn: () => assert.fail('no warning expected'), error: (_m: string, f?: Record<string, unknown>) => void lines.push(f ?? {}) };
  let t = 0;
  const notice = createSparseWindowNotice(log, () => t, 60_000);
  // 100 cars, one reading per 10 s window; car k reports k % 7 + 1 windows in the minute.
  const skipped = Array.from({ length: 100 }, (_, k) => Array.from({ length: (k % 7) + 1 }, () => ({ vehicleId: `car-${String(k).padStart(3, '0')}`, events: 1 }))).flat();
  notice.observe({ skipped, scored: 0, minEvents: 8, window: WINDOW });
  t = 60_000;
  notice.observe({ skipped: [], scored: 0, minEvents: 8, window: WINDOW });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.cars, 100);
  assert.equal(lines[0]!.skipped, skipped.length);
  assert.deepEqual(lines[0]!.mostSkipped, ['car-006: 7', 'car-013: 7', 'car-020: 7', 'car-027: 7', 'car-034: 7', 'car-041: 7', 'car-048: 7', 'car-055: 7', 'car-062: 7', 'car-069: 7']);
});
