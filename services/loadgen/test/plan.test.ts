import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventAt, makeClock, planFailures, wallAt } from '../src/plan.js';
import { parseArgs, type RunOptions } from '../src/args.js';
import { vehicleIdOf } from '../src/partition.js';

test('event time reaches the wall clock exactly when publishing stops, never before', () => {
  const c = makeClock(1_000_000, 40_000, 10);
  assert.equal(eventAt(c, 1_000_000), 1_000_000 - 360_000);
  assert.equal(eventAt(c, 1_040_000), 1_040_000);
  for (let w = 1_000_000; w <= 1_040_000; w += 1000) assert.ok(eventAt(c, w) <= w);
  assert.equal(wallAt(c, eventAt(c, 1_012_345)), 1_012_345);
  const real = makeClock(5000, 60_000, 1);
  assert.equal(eventAt(real, 7000), 7000, 'time scale 1: event time is wall time');
});

test('failures: spread over the fleet, modes cycled, same onset, ground truth in wall time too', () => {
  const o = parseArgs(
    ['--cars', '50', '--failures', '2', '--failure-modes', 'coolant_overheat,tire_leak', '--failure-at', '100', '--time-scale', '10', '--duration', '40', '--prefix', 'p'],
    {},
  ) as RunOptions;
  const clock = makeClock(1_000_000, 40_000, 10);
  const f = planFailures(o, clock);
  assert.deepEqual(
    f.map((x) => [x.vehicleId, x.mode]),
    [
      [vehicleIdOf('p', 12, 50, 50), 'coolant_overheat'],
      [vehicleIdOf('p', 37, 50, 50), 'tire_leak'],
    ],
  );
  assert.deepEqual(
    f.map((x) => x.vehicleId),
    ['p-00013-0001', 'p-00038-0001'],
  );
  assert.ok(f.every((x) => x.onsetTs === clock.eventStart + 100_000 && x.onsetWall === 1_010_000 && x.rampMs === 30_000));
  const all = planFailures({ ...o, failures: 50 }, clock);
  assert.equal(new Set(all.map((x) => x.vehicleId)).size, 50, 'as many failing cars as cars: all distinct');
});
