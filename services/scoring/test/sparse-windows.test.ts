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
    notice.observe({ skipped, scored, minEvents: 8, window: WINDOW });
    assert.equal(lines.length, expectedLines, `after t=${at}`);
  }
  assert.equal(lines[0]!.level, 'error');
  assert.match(lines[0]!.msg, /nothing is scored/);
  assert.deepEqual({ skipped: lines[0]!.fields.skipped, scored: lines[0]!.fields.scored, seconds: lines[0]!.fields.seconds }, { skipped: 4, scored: 0, seconds: 60 });
  assert.deepEqual(lines[0]!.fields.readingsPerWindow, { min: 1, max: 3 });
  assert.equal(lines[0]!.fields.minReadings, 8);
  assert.match(String(lines[0]!.fields.hint), /needs 8 readings per 10 s window \(trained at 1 Hz\)/);
  assert.equal(lines[1]!.level, 'warn');
  assert.deepEqual({ skipped: lines[1]!.fields.skipped, scored: lines[1]!.fields.scored }, { skipped: 4, scored: 2 });
});
