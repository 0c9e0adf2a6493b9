import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SENSORS, SENSOR_NAMES } from '@pitwall/common';
import { createFleet, vehicleIdsFor, type FailureMode, type FailureSpec, type FleetOptions, type Reading } from '../src/fleet.js';

const T0 = 1_700_000_000_000;

/** Runs a fleet at 1 Hz for `seconds` ticks; returns each car's readings in time order and the fleet. */
function runFleet(opts: FleetOptions, seconds: number): { byCar: Map<string, Reading[]>; fleet: ReturnType<typeof createFleet> } {
  const fleet = createFleet(opts);
  const byCar = new Map<string, Reading[]>(fleet.vehicleIds.map((id) => [id, []]));
  for (let k = 0; k < seconds; k++) {
    for (const r of fleet.tick(T0 + k * 1000)) byCar.get(r.vehicleId)!.push(r);
  }
  return { byCar, fleet };
}

// ---- shape and determinism ----

test('vehicle ids are prefix-NNNN and readings carry all 18 sensors in order, ints rounded', () => {
  assert.deepEqual(vehicleIdsFor(3), ['car-0001', 'car-0002', 'car-0003']);
  const fleet = createFleet({ cars: 12, seed: 1, idPrefix: 'van' });
  assert.equal(fleet.vehicleIds[11], 'van-0012');
  const readings = fleet.tick(T0);
  assert.equal(readings.length, 12);
  for (const r of readings) {
    assert.equal(r.ts, T0);
    assert.deepEqual(Object.keys(r.values), [...SENSOR_NAMES]);
    for (const spec of SENSORS) {
      assert.ok(Number.isFinite(r.values[spec.name]), spec.name);
      if (spec.kind === 'int') assert.ok(Number.isInteger(r.values[spec.name]), spec.name);
    }
  }
});

test('the same seed gives the same output, another seed a different one', () => {
  const a = runFleet({ cars: 5, seed: 99 }, 300).byCar;
  const b = runFleet({ cars: 5, seed: 99 }, 300).byCar;
  const c = runFleet({ cars: 5, seed: 100 }, 300).byCar;
  assert.deepEqual([...a.entries()], [...b.entries()]);
  assert.notDeepEqual([...a.entries()], [...c.entries()]);
});

test('cars differ from each other and firmware is constant per car', () => {
  const { byCar } = runFleet({ cars: 4, seed: 5 }, 120);
  const speeds = [...byCar.values()].map((rs) => rs.map((r) => r.values.speed).join());
  assert.equal(new Set(speeds).size, 4);
  for (const rs of byCar.values()) assert.equal(new Set(rs.map((r) => r.values.control_unit_firmware)).size, 1);
});

test('injecting a failure changes nothing but the failing car after onset', () => {
  const onsetTs = T0 + 100_000;
  const healthy = runFleet({ cars: 4, seed: 3 }, 200).byCar;
  const failing = runFleet({ cars: 4, seed: 3, failures: [{ vehicleId: 'car-0002', mode: 'coolant_overheat', onsetTs }] }, 200).byCar;
  for (const id of ['car-0001', 'car-0003', 'car-0004']) assert.deepEqual(failing.get(id), healthy.get(id));
  const before = (rs: Reading[]): Reading[] => rs.filter((r) => r.ts < onsetTs);
  assert.deepEqual(before(failing.get('car-0002')!), before(healthy.get('car-0002')!));
  assert.notDeepEqual(failing.get('car-0002'), healthy.get('car-0002'));
});

test('tick rejects decreasing or non-finite timestamps and accepts repeats', () => {
  const fleet = createFleet({ cars: 1, seed: 1 });
  fleet.tick(T0 + 1000);
  assert.equal(fleet.tick(T0 + 1000).length, 1);
  assert.throws(() => fleet.tick(T0), /must not decrease/);
  assert.throws(() => fleet.tick(Number.NaN), /finite/);
});

test('createFleet rejects bad failure specs', () => {
  const cases: [FailureSpec, RegExp][] = [
    [{ vehicleId: 'car-0009', mode: 'tire_leak', onsetTs: T0 }, /unknown vehicle "car-0009"/],
    [{ vehicleId: 'car-0001', mode: 'flat_battery' as FailureMode, onsetTs: T0 }, /unknown mode/],
    [{ vehicleId: 'car-0001', mode: 'faulty_sensor', onsetTs: T0, sensor: 'oil_temp' }, /unknown sensor "oil_temp"/],
    [{ vehicleId: 'car-0001', mode: 'tire_leak', onsetTs: T0, sensor: 'speed' }, /must be one of tire_pressure/],
    [{ vehicleId: 'car-0001', mode: 'coolant_overheat', onsetTs: T0, sensor: 'coolant_temp' }, /sensor can only be chosen/],
    [{ vehicleId: 'car-0001', mode: 'engine_vibration', onsetTs: T0, rampMs: -1 }, /rampMs must be >= 0/],
  ];
  for (const [spec, pattern] of cases) assert.throws(() => createFleet({ cars: 2, seed: 1, failures: [spec] }), pattern, JSON.stringify(spec));
  const twice: FailureSpec = { vehicleId: 'car-0001', mode: 'tire_leak', onsetTs: T0, sensor: 'tire_pressure_2_1' };
  assert.throws(() => createFleet({ cars: 2, seed: 1, failures: [twice, { ...twice, onsetTs: T0 + 1 }] }), /given twice/);
  assert.throws(() => createFleet({ cars: 0, seed: 1 }), /cars must be/);
});

test('failures are resolved with defaults, in onset order', () => {
  const fleet = createFleet({
    cars: 3,
    seed: 1,
    failures: [
      { vehicleId: 'car-0002', mode: 'faulty_sensor', onsetTs: T0 + 50 },
      { vehicleId: 'car-0003', mode: 'tire_leak', onsetTs: T0 + 10, rampMs: 5000 },
      { vehicleId: 'car-0001', mode: 'battery_degradation', onsetTs: T0 + 20 },
    ],
  });
  const got = fleet.failures!;
  assert.deepEqual(
    got.map((f) => [f.vehicleId, f.mode, f.rampMs]),
    [
      ['car-0003', 'tire_leak', 5000],
      ['car-0001', 'battery_degradation', 60_000],
      ['car-0002', 'faulty_sensor', 60_000],
    ],
  );
  assert.match(got[0]!.sensor!, /^tire_pressure_[12]_[12]$/);
  assert.equal(got[1]!.sensor, undefined);
  assert.equal(got[2]!.sensor, 'coolant_temp');
});
