import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_RAMP_MS, groundTruthLine, parseFailurePlans, toFailureSpec, type FailurePlan } from '../src/failures.js';

const RAMP = 60_000;

test('failure plans parse from vehicleId:mode:onsetSeconds[:sensor] lists', () => {
  const cases: [string, FailurePlan[]][] = [
    [
      'car-0003:coolant_overheat:20,car-0007:tire_leak:20',
      [
        { vehicleId: 'car-0003', mode: 'coolant_overheat', onsetOffsetMs: 20_000, rampMs: RAMP },
        { vehicleId: 'car-0007', mode: 'tire_leak', onsetOffsetMs: 20_000, rampMs: RAMP },
      ],
    ],
    [' car-0001 : faulty_sensor : 2.5 : battery_percentage ,', [{ vehicleId: 'car-0001', mode: 'faulty_sensor', onsetOffsetMs: 2500, rampMs: RAMP, sensor: 'battery_percentage' }]],
    ['car-0002:tire_leak:0:tire_pressure_2_2', [{ vehicleId: 'car-0002', mode: 'tire_leak', onsetOffsetMs: 0, rampMs: RAMP, sensor: 'tire_pressure_2_2' }]],
    [
      'car-0010:battery_degradation:600,car-0010:engine_vibration:600',
      [
        { vehicleId: 'car-0010', mode: 'battery_degradation', onsetOffsetMs: 600_000, rampMs: RAMP },
        { vehicleId: 'car-0010', mode: 'engine_vibration', onsetOffsetMs: 600_000, rampMs: RAMP },
      ],
    ],
    ['', []],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseFailurePlans(text, 10, RAMP), want, text);
});

test('"demo" injects three different modes into three distinct cars at 20 s with a 30 s ramp', () => {
  for (const cars of [3, 20, 500]) {
    const plans = parseFailurePlans('demo', cars, RAMP);
    assert.equal(plans.length, 3);
    assert.equal(new Set(plans.map((p) => p.vehicleId)).size, 3);
    assert.equal(new Set(plans.map((p) => p.mode)).size, 3);
    for (const p of plans) {
      assert.equal(p.onsetOffsetMs, 20_000);
      assert.equal(p.rampMs, DEMO_RAMP_MS);
      assert.ok(Number(p.vehicleId.slice(4)) <= cars, p.vehicleId);
    }
  }
  assert.deepEqual(
    parseFailurePlans('DEMO', 20, RAMP).map((p) => `${p.vehicleId}:${p.mode}`),
    ['car-0006:coolant_overheat', 'car-0011:tire_leak', 'car-0016:engine_vibration'],
  );
  assert.throws(() => parseFailurePlans('demo', 2, RAMP), /needs at least 3 cars/);
});

test('bad failure plans are refused, quoting the item', () => {
  const cases: [string, RegExp][] = [
    ['car-0001:meltdown:5', /"car-0001:meltdown:5": unknown failure mode "meltdown", expected one of tire_leak/],
    ['car-0001:tire_leak', /expected vehicleId:mode:onsetSeconds\[:sensor\]/],
    ['car-0001:tire_leak:1:tire_pressure_1_1:x', /expected vehicleId:mode:onsetSeconds/],
    ['car-0001:tire_leak:soon', /onset must be seconds >= 0, got "soon"/],
    ['car-0001:tire_leak:-3', /onset must be seconds >= 0/],
    ['car-0001:tire_leak:', /onset must be seconds >= 0, got ""/],
    ['car-0011:tire_leak:5', /"car-0011:tire_leak:5": unknown vehicle "car-0011"/],
    ['car-0001:faulty_sensor:5:oil', /unknown sensor "oil"/],
    ['car-0001:coolant_overheat:5:coolant_temp', /sensor can only be chosen/],
    ['car-0001:tire_leak:5:speed', /sensor must be one of tire_pressure/],
    ['car-0001:faulty_sensor:5,car-0001:faulty_sensor:9:coolant_temp', /"car-0001:faulty_sensor:9:coolant_temp": the same failure is given twice/],
  ];
  for (const [text, pattern] of cases) assert.throws(() => parseFailurePlans(text, 10, RAMP), pattern, text);
});

test('plans become absolute failure specs relative to the start', () => {
  const [plan] = parseFailurePlans('car-0002:faulty_sensor:30:speed', 5, 15_000);
  assert.deepEqual(toFailureSpec(plan!, 1_700_000_000_000), {
    vehicleId: 'car-0002',
    mode: 'faulty_sensor',
    onsetTs: 1_700_000_030_000,
    rampMs: 15_000,
    sensor: 'speed',
  });
  const [other] = parseFailurePlans('car-0002:engine_vibration:1', 5, 0);
  assert.equal('sensor' in toFailureSpec(other!, 0), false);
});

test('ground truth is one JSON line per injection', () => {
  const cases: [Parameters<typeof groundTruthLine>[0], string][] = [
    [{ vehicleId: 'car-0001', mode: 'tire_leak', onsetTs: 5, sensor: 'tire_pressure_1_2' }, '{"vehicleId":"car-0001","mode":"tire_leak","onsetTs":5,"sensor":"tire_pressure_1_2"}\n'],
    [{ vehicleId: 'car-0002', mode: 'coolant_overheat', onsetTs: 7 }, '{"vehicleId":"car-0002","mode":"coolant_overheat","onsetTs":7}\n'],
  ];
  for (const [event, line] of cases) assert.equal(groundTruthLine(event), line);
});
