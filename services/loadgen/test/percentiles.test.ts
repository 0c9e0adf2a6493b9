import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nearestRank, summarize } from '../src/percentiles.js';
import { alertLatencies } from '../src/summary.js';
import { makeClock } from '../src/plan.js';

test('nearest rank: a measured value, at least p % at or below it', () => {
  const v = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(nearestRank(v, 50), 50);
  assert.equal(nearestRank(v, 99), 99);
  assert.equal(nearestRank(v, 100), 100);
  assert.equal(nearestRank([7], 99), 7);
  assert.equal(nearestRank([1, 2], 50), 1);
  assert.equal(nearestRank([1, 2, 3], 50), 2);
  assert.equal(nearestRank([], 50), undefined);
  assert.throws(() => nearestRank(v, 0), /percentile/);
});

test('summarize sorts, ignores non-finite values, handles empty input', () => {
  assert.deepEqual(summarize([300, 100, 200, Number.NaN]), { count: 3, p50: 200, p99: 300, max: 300 });
  assert.deepEqual(summarize([]), { count: 0, p50: null, p99: null, max: null });
  const many = Array.from({ length: 1000 }, (_, i) => 1000 - i);
  assert.deepEqual(summarize(many), { count: 1000, p50: 500, p99: 990, max: 1000 });
});

test('alert latency: window end (opened_at + window) in wall time -> arrival, first revision only', () => {
  // 10x: event time 100 s after the event start is 10 s of wall time after the wall start.
  const clock = makeClock(1_000_000, 40_000, 10);
  const opened = clock.eventStart + 90_000; // window [90 s, 100 s) ends at wall start + 10 s
  const alerts = [
    { vehicleId: 'a', incidentId: 'i1', revision: 1, severity: 'LOW', area: 'cooling', openedAt: opened, receivedAt: 1_000_000 + 10_000 + 2_500 },
    { vehicleId: 'a', incidentId: 'i1', revision: 2, severity: 'HIGH', area: 'cooling', openedAt: opened, receivedAt: 1_000_000 + 30_000 },
    { vehicleId: 'b', incidentId: 'i2', revision: 1, severity: 'LOW', area: null, openedAt: null, receivedAt: 1_000_000 },
  ];
  assert.deepEqual(alertLatencies(alerts, clock, 10_000), [2500]);
  // The grace is event time: 2 s of it is 0.2 s of wall time at 10x.
  assert.deepEqual(alertLatencies(alerts, clock, 10_000, 2_000), [2300]);
});
