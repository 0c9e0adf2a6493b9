import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SENSOR_NAMES, type TelemetryRecord } from '@pitwall/common';
import type { Reading } from '@pitwall/simulator';
import type { HistoryRecord } from '../src/kafka-history.js';
import { decodeTelemetry, historyWindows } from '../src/kafka-training.js';

const reading = (vehicleId: string, ts: number, x: number): Reading => ({ vehicleId, ts, values: Object.fromEntries(SENSOR_NAMES.map((s) => [s, x])) });

describe('historyWindows', () => {
  it('sorts each vehicle by event time, counts a repeated event time once (the first), keeps covered windows', () => {
    const readings: Reading[] = [];
    // b: 10 readings in [0, 10 s), arriving out of order, one redelivered with another value.
    for (const s of [3, 1, 0, 2, 4, 5, 6, 7, 8, 9]) readings.push(reading('b', s * 1000, s));
    readings.push(reading('b', 4000, 999));
    // a: 8 readings in [10 s, 20 s) (80%: kept), 7 in [20 s, 30 s) (dropped).
    for (let s = 10; s < 18; s++) readings.push(reading('a', s * 1000, 1));
    for (let s = 20; s < 27; s++) readings.push(reading('a', s * 1000, 1));
    const w = historyWindows(readings, { minCoverage: 0.8 });
    assert.deepEqual(
      w.map((x) => [x.vehicleId, x.windowStart, x.events]),
      [
        ['a', 10_000, 8],
        ['b', 0, 10],
      ],
    );
    // b's max is 9: the redelivered 999 was dropped.
    const maxIdx = 3;
    assert.equal(w[1]!.vector[maxIdx], 9);
    assert.deepEqual(
      historyWindows(readings, { minCoverage: 0.5 }).map((x) => x.events),
      [8, 7, 10],
    );
  });
});

describe('decodeTelemetry', () => {
  const rec = (value: string | null, headers: HistoryRecord['headers'] = {}): HistoryRecord => ({
    partition: 0,
    offset: '0',
    timestamp: 0,
    key: null,
    value: value === null ? null : Buffer.from(value),
    headers,
  });
  const decoder = {
    async decode(buf: Buffer): Promise<TelemetryRecord> {
      const text = buf.toString();
      if (text === 'bad') throw new Error('cannot decode');
      const [id, ts] = text.split('@') as [string, string];
      return { vehicle_id: id, ts: Number(ts), out_of_range: [], ...Object.fromEntries(SENSOR_NAMES.map((s, i) => [s, i])) };
    },
  };
  it('skips control records and counts undecodable ones', async () => {
    const r = await decodeTelemetry([rec('x@1000'), rec(null, { 'pitwall.control': Buffer.from('idle') }), rec('bad'), rec(null), rec('y@2000')], decoder);
    assert.equal(r.control, 1);
    assert.equal(r.undecodable, 2);
    assert.deepEqual(
      r.readings.map((x) => [x.vehicleId, x.ts, x.values[SENSOR_NAMES[2]!]]),
      [
        ['x', 1000, 2],
        ['y', 2000, 2],
      ],
    );
  });
});
