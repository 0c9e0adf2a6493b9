import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSparseWindowNotice } from '../src/sparse-windows.js';

const WINDOW = { sizeMs: 10_000, rateHz: 1 };

test('sparse windows are reported at most once a minute, as an error when nothing was scored', () => {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const log = {
    warn: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'warn', msg, fields: fields ?? {} }),
    error: (msg: string, fields?: Record<string, unknown>) => lines.push({ level: 'error', msg, fields: fields ?? {} }),
  };
  let t = 0;
  const notice = createSparseWindowNotice(log, () => t, 60_000);
  // [time, event counts skipped, scored] -> lines written so far
  const table: [number, number[], number, number][] = [
    [0, [], 0, 0], // nothing skipped: silent
    [1_000, [1, 2], 0, 1], // first skip: said at once; nothing scored yet -> error
    [2_000, [1], 3, 1], // within the minute: counted, silent
    [30_000, [3], 0, 1],
    [61_000, [], 4, 2], // a minute later: the skips since the last line
    [200_000, [], 9, 2], // nothing skipped since: silent
  ];
  for (const [at, skipped, scored, expectedLines] of table) {
    t = at;
    notice.observe({ skipped, scored, minEvents: 8, window: WINDOW });
    assert.equal(lines.length, expectedLines, `after t=${at}`);
  }
  assert.equal(lines[0]!.level, 'error');
  assert.match(lines[0]!.msg, /nothing is scored/);
  assert.deepEqual(lines[0]!.fields.readingsPerWindow, { min: 1, max: 2 });
  assert.equal(lines[0]!.fields.minReadings, 8);
  assert.match(String(lines[0]!.fields.hint), /needs 8 readings per 10 s window \(trained at 1 Hz\)/);
  assert.equal(lines[1]!.level, 'warn', 'some windows were scored in that minute');
  assert.deepEqual({ skipped: lines[1]!.fields.skipped, scored: lines[1]!.fields.scored }, { skipped: 2, scored: 7 });
  assert.deepEqual(lines[1]!.fields.readingsPerWindow, { min: 1, max: 3 });
});
