import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TelemetryRecord } from '@pitwall/common';
import { cacheReads, emptySeries, offsetRange, toSeries } from '../src/telemetry.js';

test('offsetRange', () => {
  const cases: [[bigint, bigint, bigint, bigint, number], { start: bigint; end: bigint }][] = [
    // by timestamp
    [[0n, 1000n, 100n, 400n, 50], { start: 100n, end: 400n }],
    // nothing after `to`: read to the end
    [[0n, 1000n, 100n, 1000n, 50], { start: 100n, end: 1000n }],
    // nothing produced at or after `from`: the newest maxScan records
    [[0n, 1000n, 1000n, 1000n, 50], { start: 950n, end: 1000n }],
    [[980n, 1000n, 1000n, 1000n, 50], { start: 980n, end: 1000n }],
    // a start before the log start (retention) is clamped
    [[500n, 1000n, 100n, 700n, 50], { start: 500n, end: 700n }],
    // empty partition
    [[0n, 0n, 0n, 0n, 50], { start: 0n, end: 0n }],
  ];
  for (const [args, expected] of cases) assert.deepEqual(offsetRange(...args), expected, args.join(','));
});

test('toSeries sorts by event time, columns per sensor, nulls for missing values', () => {
  const r = (ts: number, coolant: number | null, oor: string[] = []): TelemetryRecord => ({ vehicle_id: 'v', ts, coolant_temp: coolant, out_of_range: oor });
  const s = toSeries({ vehicleId: 'v', from: 0, to: 100 }, 2, [r(30, 90), r(10, 80, ['coolant_temp']), r(20, null)], 7, 'scan-limit');
  assert.deepEqual(s.ts, [10, 20, 30]);
  assert.deepEqual(s.sensors.coolant_temp, [80, null, 90]);
  assert.deepEqual(s.sensors.speed, [null, null, null]);
  assert.deepEqual(s.out_of_range, { coolant_temp: [0] });
  assert.equal(Object.keys(s.sensors).length, 18);
  assert.deepEqual([s.partition, s.scanned, s.truncated], [2, 7, 'scan-limit']);
});

test('cacheReads: one read per query while fresh; failed reads are not kept', async () => {
  let t = 0;
  const reads: number[] = [];
  let fail = false;
  const read = cacheReads(
    async (q) => {
      reads.push(q.from);
      if (fail) throw new Error('kafka down');
      return emptySeries(q, 0);
    },
    () => t,
    100,
  );
  const q = { vehicleId: 'v', from: 1, to: 2 };
  assert.equal(await read(q), await read(q));
  assert.deepEqual(reads, [1]);
  await read({ ...q, from: 0 });
  assert.deepEqual(reads, [1, 0], 'another range is another read');
  t = 101;
  await read(q);
  assert.deepEqual(reads, [1, 0, 1], 'read again once older than the ttl');
  fail = true;
  const r = { ...q, to: 3 };
  await assert.rejects(read(r), /kafka down/);
  fail = false;
  await read(r);
  assert.deepEqual(reads, [1, 0, 1, 1, 1], 'a failed read is asked again');
});
