import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeFeatures, FEATURE_NAMES, featureFields, SENSORS, SENSOR_NAMES } from '@pitwall/common';
import { createStuckSensorDetector, MIN_FLAT_WINDOWS, stuckContributors, stuckWindowOf, stuckWindowOfRecord, WARMUP_MOVING, type StuckWindow } from '../src/stuck-sensor.js';

const SIZE = 10_000;
const mid = (name: string): number => {
  const [lo, hi] = SENSORS.find((s) => s.name === name)!.plausible;
  return (lo + hi) / 2;
};

/**
 * A window of 10 readings at 1 Hz. Every sensor varies around the middle of its range (k makes
 * each window different) unless `shape` says otherwise for it:
 * a number = every reading is that value (flat), 'wild' = one reading far outside the range.
 */
function windowAt(k: number, shape: Record<string, number | 'wild'> = {}, vehicleId = 'car-1', events = 10): StuckWindow {
  const start = k * SIZE;
  const rows = Array.from({ length: events }, (_, j) => ({
    ts: start + j * 1000,
    values: SENSOR_NAMES.map((name, i) => {
      const s = shape[name];
      if (typeof s === 'number') return s;
      if (s === 'wild' && j === 3) return SENSORS[i]!.plausible[1] * 10 + 1000;
      return mid(name) + ((j + k + i) % 3) * 0.01;
    }),
  }));
  return stuckWindowOf(vehicleId, start, start + SIZE, events, computeFeatures(rows));
}

/** Verdicts (stuck sensor names, or '-') of a sequence of windows, after `warmup` varying windows. */
function run(shapes: Array<Record<string, number | 'wild'>>, warmup = WARMUP_MOVING, events = 10): string[] {
  const d = createStuckSensorDetector();
  for (let k = 0; k < warmup; k++) assert.deepEqual(d.observe(windowAt(k)), []);
  return shapes.map((shape, i) => {
    const v = d.observe(windowAt(warmup + i, shape, 'car-1', events));
    return v.length ? v.map((s) => s.sensor).join(',') : '-';
  });
}

const flat = (name: string, value: number, n: number): Array<Record<string, number | 'wild'>> => Array.from({ length: n }, () => ({ [name]: value }));

describe('stuck-sensor detector', () => {
  const table: Array<{ name: string; shapes: Array<Record<string, number | 'wild'>>; warmup?: number; events?: number; expect: string[] }> = [
    { name: 'a varying sensor frozen for 5 windows: stuck from the 3rd on', shapes: flat('coolant_temp', 92.41, 5), expect: ['-', '-', 'coolant_temp', 'coolant_temp', 'coolant_temp'] },
    { name: 'frozen for 2 windows only: not stuck', shapes: [...flat('coolant_temp', 92.41, 2), {}, ...flat('coolant_temp', 92.41, 2)], expect: ['-', '-', '-', '-', '-'] },
    {
      name: 'wild episodes between frozen ones do not break the run',
      shapes: [{ coolant_temp: 92.41 }, { coolant_temp: 'wild' }, { coolant_temp: 92.41 }, { coolant_temp: 'wild' }, { coolant_temp: 92.41 }, { coolant_temp: 92.41 }],
      expect: ['-', '-', '-', '-', 'coolant_temp', 'coolant_temp'],
    },
    { name: 'a wild window itself is never called stuck (the model alerts on it)', shapes: [...flat('speed', 87.3, 3), { speed: 'wild' }], expect: ['-', '-', 'speed', '-'] },
    { name: 'two sensors stuck at once', shapes: Array.from({ length: 3 }, () => ({ coolant_temp: 90, intake_air_temp: 31.5 })), expect: ['-', '-', 'coolant_temp,intake_air_temp'] },
    // Healthy constant cases that must not fire.
    {
      name: 'parked: speed, throttle and flow at 0 for a long time',
      shapes: Array.from({ length: 20 }, () => ({ speed: 0, throttle_pos: 0, intake_air_flow_speed: 0, current_draw: 0 })),
      expect: Array<string>(20).fill('-'),
    },
    { name: 'battery at 100 % for a long time', shapes: flat('battery_percentage', 100, 20), expect: Array<string>(20).fill('-') },
    { name: 'no verdict before the warm-up: a sensor frozen from the start', shapes: flat('coolant_temp', 92.41, 10), warmup: WARMUP_MOVING - 1, expect: Array<string>(10).fill('-') },
    { name: 'windows with too few readings say nothing', shapes: flat('coolant_temp', 92.41, 5), events: 2, expect: Array<string>(5).fill('-') },
  ];
  for (const row of table) {
    it(row.name, () => {
      assert.deepEqual(run(row.shapes, row.warmup, row.events), row.expect);
    });
  }

  it('sensors constant in this car are not expected to move: a firmware build, a mostly constant TPMS', () => {
    // The firmware never changes; a TPMS reporting whole kPa shows the same value in 4 of 5 windows.
    const d = createStuckSensorDetector();
    const out: string[] = [];
    for (let k = 0; k < 400; k++) {
      const v = d.observe(windowAt(k, k % 5 === 0 ? { control_unit_firmware: 4711 } : { tire_pressure_1_1: 235, control_unit_firmware: 4711 }));
      out.push(...v.map((s) => s.sensor));
    }
    assert.deepEqual(out, []);
  });

  it('a noisy quantized sensor (tire pressure flips between whole kPa) that freezes is stuck', () => {
    assert.deepEqual(run(flat('tire_pressure_1_1', 236, 3)), ['-', '-', 'tire_pressure_1_1']);
  });

  it('a gap between windows ends the run', () => {
    const d = createStuckSensorDetector();
    for (let k = 0; k < WARMUP_MOVING; k++) d.observe(windowAt(k));
    const k0 = WARMUP_MOVING;
    d.observe(windowAt(k0, { coolant_temp: 90 }));
    d.observe(windowAt(k0 + 1, { coolant_temp: 90 }));
    assert.deepEqual(d.observe(windowAt(k0 + 3, { coolant_temp: 90 })), []);
  });

  it('a redelivered window gets its first verdict and changes nothing', () => {
    const d = createStuckSensorDetector();
    for (let k = 0; k < WARMUP_MOVING; k++) d.observe(windowAt(k));
    const ws = [0, 1, 2].map((i) => windowAt(WARMUP_MOVING + i, { coolant_temp: 90 }));
    const first = ws.map((w) => d.observe(w).length);
    assert.deepEqual(first, [0, 0, 1]);
    assert.deepEqual(
      ws.map((w) => d.observe(w).length),
      first,
    );
    assert.equal(d.observe(windowAt(WARMUP_MOVING + 3, { coolant_temp: 90 }))[0]!.flatWindows, MIN_FLAT_WINDOWS + 1);
  });

  it('vehicles are independent, idle ones are evicted and the count is bounded', () => {
    const d = createStuckSensorDetector({ maxVehicles: 3, idleMs: 60_000 });
    for (const id of ['a', 'b', 'c', 'd']) d.observe(windowAt(0, {}, id));
    assert.equal(d.size(), 3);
    d.observe(windowAt(100, {}, 'a'));
    assert.equal(d.size(), 1, 'b, c, d idle for more than 60 s of event time');
    // A forgotten vehicle starts over: no verdict until it has moved again for the warm-up.
    for (let k = 101; k < 101 + MIN_FLAT_WINDOWS; k++) assert.deepEqual(d.observe(windowAt(k, { coolant_temp: 90 }, 'b')), []);
  });

  it('reads min and max from a features record as from a vector', () => {
    const w = windowAt(7, { coolant_temp: 90 });
    const vector = new Float64Array(FEATURE_NAMES.length);
    SENSOR_NAMES.forEach((_, i) => {
      vector[i * 6 + 2] = w.min[i]!;
      vector[i * 6 + 3] = w.max[i]!;
    });
    const record = { vehicle_id: 'car-1', window_start: w.windowStart, window_end: w.windowEnd, event_count: 10, ...featureFields(vector) };
    assert.deepEqual(stuckWindowOfRecord(record), { ...w, min: Array.from(w.min), max: Array.from(w.max) });
  });

  it('names the stuck sensor, its value and how long for the operator', () => {
    const [c] = stuckContributors([{ sensor: 'coolant_temp', value: 92.41, flatWindows: 4, flatMs: 40_000 }]);
    assert.deepEqual(c, {
      sensor: 'coolant_temp',
      share: 1,
      component: 'coolant_temp sensor',
      action: 'Stuck: reads exactly 92.41 °C in 4 windows (40 s) though it normally varies. Check the sensor and its wiring; do not trust its readings.',
    });
  });
});
