import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEATURE_NAMES, SENSORS, SENSOR_NAMES, computeFeatures, outOfRange } from '@pitwall/common';
import { createFleet, type FailureMode, type FleetOptions, type Reading, type ResolvedFailure } from '../src/fleet.js';
import { createRng } from '../src/random.js';

// Helpers live here, not in a shared module: node --test runs every .js under dist/test as a test file.

const T0 = 1_700_000_000_000;

function runFleet(opts: FleetOptions, seconds: number): { byCar: Map<string, Reading[]>; failures: readonly ResolvedFailure[] } {
  const fleet = createFleet(opts);
  const byCar = new Map<string, Reading[]>(fleet.vehicleIds.map((id) => [id, []]));
  for (let k = 0; k < seconds; k++) {
    for (const r of fleet.tick(T0 + k * 1000)) byCar.get(r.vehicleId)!.push(r);
  }
  return { byCar, failures: fleet.failures ?? [] };
}

/** Tumbling 10 s windows of complete 1 Hz data starting at or after fromTs, as windowing computes them. */
function windows(readings: readonly Reading[], fromTs = -Infinity): Float64Array[] {
  const groups = new Map<number, Reading[]>();
  for (const r of readings) {
    if (r.ts < fromTs) continue;
    const start = Math.floor(r.ts / 10_000) * 10_000;
    if (!groups.has(start)) groups.set(start, []);
    groups.get(start)!.push(r);
  }
  return [...groups.values()].filter((rs) => rs.length === 10).map((rs) => computeFeatures(rs.map((r) => ({ ts: r.ts, values: SENSOR_NAMES.map((n) => r.values[n]!) }))));
}

const feature = (name: string) => {
  const i = FEATURE_NAMES.indexOf(name);
  assert.ok(i >= 0, `no feature ${name}`);
  return (w: Float64Array): number => w[i]!;
};
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const correlation = (a: readonly number[], b: readonly number[]): number => {
  const ma = mean(a);
  const mb = mean(b);
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < a.length; i++) {
    cov += (a[i]! - ma) * (b[i]! - mb);
    va += (a[i]! - ma) ** 2;
    vb += (b[i]! - mb) ** 2;
  }
  return cov / Math.sqrt(va * vb);
};
const all = (byCar: Map<string, Reading[]>): Reading[] => [...byCar.values()].flat();

// One long healthy run shared by the realism tests: 40 cars, 2 hours at 1 Hz.
const healthy = runFleet({ cars: 40, seed: 2024 }, 7200).byCar;

test('healthy values stay within the plausible ranges over a long run of many cars', () => {
  let n = 0;
  for (const r of all(healthy)) {
    assert.deepEqual(outOfRange(r.values), [], `${r.vehicleId} at ${r.ts}: ${JSON.stringify(r.values)}`);
    n++;
  }
  assert.equal(n, 40 * 7200);
});

test('healthy values stay in range with irregular ticks, repeats and a long gap', () => {
  const fleet = createFleet({ cars: 10, seed: 8 });
  const rng = createRng(1);
  let ts = T0;
  for (let k = 0; k < 3000; k++) {
    ts += k === 1500 ? 45 * 60_000 : Math.round(rng.uniform(0, 5000));
    for (const r of fleet.tick(ts)) assert.deepEqual(outOfRange(r.values), [], JSON.stringify(r));
  }
});

test('healthy signals have the documented ranges and behaviour', () => {
  const rs = all(healthy);
  const range = (name: string): [number, number] => {
    const vs = rs.map((r) => r.values[name]!);
    return [vs.reduce((a, b) => Math.min(a, b)), vs.reduce((a, b) => Math.max(a, b))];
  };
  const [speedMin, speedMax] = range('speed');
  assert.equal(speedMin, 0, 'cars stop');
  assert.ok(speedMax > 110 && speedMax <= 130, `top speed ${speedMax}`);
  assert.ok(rs.filter((r) => r.values.speed === 0).length / rs.length > 0.03, 'cars spend some time stopped');
  for (const tire of ['tire_pressure_1_1', 'tire_pressure_1_2', 'tire_pressure_2_1', 'tire_pressure_2_2']) {
    const [lo, hi] = range(tire);
    assert.ok(lo >= 220 && hi <= 250, `${tire} ${lo}..${hi}`);
  }
  const [vLo, vHi] = range('battery_voltage');
  assert.ok(vLo >= 12.2 && vHi <= 14.5, `voltage ${vLo}..${vHi}`);
  const volts = (pred: (r: Reading) => boolean): number => mean(rs.filter(pred).map((r) => r.values.battery_voltage!));
  assert.ok(volts((r) => r.values.speed! > 20) - volts((r) => r.values.speed === 0) > 0.8, 'the alternator charges while driving');
  for (const [id, car] of healthy) {
    const drift = Math.abs(car.at(-1)!.values.battery_percentage! - car[0]!.values.battery_percentage!);
    assert.ok(drift < 15, `${id} battery moved ${drift} % in 2 h`);
  }
  const [iatLo, iatHi] = range('intake_air_temp');
  assert.ok(iatLo > 5 && iatHi < 45, `intake air ${iatLo}..${iatHi}`);
});

test('coolant warms up to a regulated operating temperature', () => {
  const at = (k: number): number[] => [...healthy.values()].map((car) => car[k]!.values.coolant_temp!);
  assert.ok(mean(at(0)) < mean(at(1200)) - 5, `start ${mean(at(0))}, after 20 min ${mean(at(1200))}`);
  for (const t of at(1200)) assert.ok(t > 82 && t < 102, `warm coolant ${t}`);
});

test('signals are correlated the way the physics says', () => {
  const rs = all(healthy);
  const v = (name: string): number[] => rs.map((r) => r.values[name]!);
  const cases: [string, string, number][] = [
    ['speed', 'engine_vibration_amplitude', 0.5],
    ['throttle_pos', 'current_draw', 0.5],
    ['throttle_pos', 'intake_air_flow_speed', 0.5],
    ['speed', 'throttle_pos', 0.5],
  ];
  for (const [a, b, min] of cases) {
    const r = correlation(v(a), v(b));
    assert.ok(r > min, `corr(${a}, ${b}) = ${r}`);
  }
  // Accelerometers are signed; road noise shows in their spread over a window, which grows with speed.
  const ws = [...healthy.values()].flatMap((car) => windows(car));
  const r = correlation(ws.map(feature('speed_mean')), ws.map(feature('accelerometer_2_2_value_std')));
  assert.ok(r > 0.5, `corr(speed_mean, accelerometer std) = ${r}`);
});

// ---- failures: each mode visibly shifts its sensor in 10 s window features after the ramp ----

const FAIL_ID = 'car-0003';
const ONSET = T0 + 120_000;
const RAMP = 60_000;
const FULL = ONSET + RAMP;
const base = runFleet({ cars: 20, seed: 11 }, 900).byCar;
const fleetWindows = [...base.values()].flatMap((car) => windows(car));
const fleetMax = (name: string): number => Math.max(...fleetWindows.map(feature(name)));
const fleetMin = (name: string): number => Math.min(...fleetWindows.map(feature(name)));

interface Case {
  mode: FailureMode;
  sensor?: string;
  /** failed: windows of the failing car after full severity; same: the same car's windows without the failure. */
  check(failed: Float64Array[], same: Float64Array[], f: ResolvedFailure): void;
}

const cases: Case[] = [
  {
    mode: 'tire_leak',
    check(failed, same, f) {
      const m = feature(`${f.sensor}_mean`);
      for (const w of failed) assert.ok(m(w) <= 115 && m(w) < fleetMin(`${f.sensor}_min`), `leaking tire at ${m(w)}`);
      assert.ok(m(failed[0]!) - m(failed.at(-1)!) > 10, 'keeps falling after full severity');
      assert.ok(mean(same.map(m)) > 225, 'healthy twin unaffected');
    },
  },
  {
    mode: 'coolant_overheat',
    check(failed, same) {
      const m = feature('coolant_temp_mean');
      const shift = mean(failed.map(m)) - mean(same.map(m));
      assert.ok(shift > 35 && shift < 50, `coolant shift ${shift}`);
      for (const w of failed) assert.ok(m(w) > fleetMax('coolant_temp_max') && m(w) > 120, `coolant ${m(w)}`);
    },
  },
  {
    mode: 'engine_vibration',
    check(failed, same) {
      const m = feature('engine_vibration_amplitude_mean');
      const sd = feature('engine_vibration_amplitude_std');
      const ratio = mean(failed.map(m)) / mean(same.map(m));
      assert.ok(ratio > 4 && ratio < 6, `vibration ${ratio}x`);
      assert.ok(mean(failed.map(sd)) > 3 * mean(same.map(sd)), 'noisier');
      failed.forEach((w, i) => assert.ok(m(w) > 3.5 * m(same[i]!), `window ${i}: ${m(w)} vs ${m(same[i]!)}`));
    },
  },
  {
    mode: 'battery_degradation',
    check(failed) {
      const volts = feature('battery_voltage_mean');
      for (const w of failed) assert.ok(volts(w) < 11.5 && volts(w) < fleetMin('battery_voltage_min'), `voltage ${volts(w)}`);
      const drain = feature('battery_percentage_slope');
      for (const w of failed) assert.ok(drain(w) < -0.04, `battery slope ${drain(w)} %/s`);
      const spikes = failed.filter((w) => feature('current_draw_max')(w) > fleetMax('current_draw_max')).length;
      assert.ok(spikes >= 0.9 * failed.length, `current spikes in ${spikes}/${failed.length} windows`);
    },
  },
  {
    mode: 'faulty_sensor',
    sensor: 'battery_percentage',
    check(failed, same) {
      const [lo, hi] = [feature('battery_percentage_min'), feature('battery_percentage_max')];
      const sd = feature('battery_percentage_std');
      const wild = (w: Float64Array): boolean => lo(w) < 0 || hi(w) > 100;
      for (const w of failed) assert.ok(wild(w) || sd(w) < 1e-9, 'every window is wild or stuck (std 0 up to rounding)');
      assert.ok(failed.some(wild) && failed.some((w) => !wild(w) && sd(w) < 1e-9), 'both episodes occur');
      assert.ok(
        same.every((w) => !wild(w)),
        'healthy twin in range',
      );
    },
  },
];

for (const c of cases) {
  test(`failure ${c.mode} shows in 10 s window features at full severity`, () => {
    const spec = { vehicleId: FAIL_ID, mode: c.mode, onsetTs: ONSET, rampMs: RAMP, ...(c.sensor ? { sensor: c.sensor } : {}) };
    const { byCar, failures } = runFleet({ cars: 20, seed: 11, failures: [spec] }, 900);
    const failed = windows(byCar.get(FAIL_ID)!, FULL);
    const same = windows(base.get(FAIL_ID)!, FULL);
    assert.equal(failed.length, same.length);
    assert.ok(failed.length >= 70);
    const before = (car: Map<string, Reading[]>): Reading[] => car.get(FAIL_ID)!.filter((r) => r.ts < ONSET);
    assert.deepEqual(before(byCar), before(base), 'healthy before onset');
    c.check(failed, same, failures[0]!);
  });
}

test('severity ramps linearly: half the shift half way through the ramp', () => {
  const { byCar } = runFleet({ cars: 5, seed: 11, failures: [{ vehicleId: FAIL_ID, mode: 'coolant_overheat', onsetTs: ONSET, rampMs: RAMP }] }, 400);
  const shiftAt = (ts: number): number => {
    const pick = (car: Map<string, Reading[]>): number => car.get(FAIL_ID)!.find((r) => r.ts === ts)!.values.coolant_temp!;
    return pick(byCar) - pick(base);
  };
  assert.ok(Math.abs(shiftAt(ONSET + RAMP / 2) - 20) < 4, `half way ${shiftAt(ONSET + RAMP / 2)}`);
  assert.ok(Math.abs(shiftAt(ONSET + RAMP / 4) - 10) < 3, `quarter way ${shiftAt(ONSET + RAMP / 4)}`);
  assert.ok(shiftAt(FULL + 60_000) > 35);
});

test('a faulty sensor reports values far outside the plausible range', () => {
  const sensors = ['coolant_temp', 'battery_percentage', 'speed', 'tire_pressure_2_1'];
  const failures = sensors.map((sensor, i) => ({ vehicleId: `car-000${i + 1}`, mode: 'faulty_sensor' as const, onsetTs: T0, rampMs: 0, sensor }));
  const { byCar } = runFleet({ cars: 4, seed: 4, failures }, 300);
  sensors.forEach((sensor, i) => {
    const [min, max] = SENSORS.find((s) => s.name === sensor)!.plausible;
    const values = byCar.get(`car-000${i + 1}`)!.map((r) => r.values[sensor]!);
    const out = values.filter((v) => v < min || v > max);
    assert.ok(out.length >= 10, `${sensor}: ${out.length} out-of-range readings`);
    assert.ok(out.some((v) => v > max + (max - min)) || out.some((v) => v < min - 0.1 * (max - min)), `${sensor} wild`);
  });
});
