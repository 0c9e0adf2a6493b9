import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError, loadFleetProfile, parseFleetProfile, SENSORS } from '@pitwall/common';
import { CARDATA_FAILING, CARDATA_HEALTHY } from '@pitwall/common/testing';
import { parseTelemetry } from '../src/validate.js';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMITS = { maxPayloadBytes: 8192, maxFutureSkewMs: 60_000 };

function reading(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const r: Record<string, unknown> = { ts: NOW - 1000 };
  for (const s of SENSORS) r[s.name] = s.kind === 'int' ? Math.round((s.plausible[0] + s.plausible[1]) / 2) : (s.plausible[0] + s.plausible[1]) / 2;
  return { ...r, ...overrides };
}
const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const TOPIC = 'vehicles/car-0001/telemetry';

test('a valid reading becomes a record with the vehicle id from the topic', () => {
  const rec = parseTelemetry(TOPIC, json(reading()), NOW, LIMITS);
  assert.equal(rec.vehicle_id, 'car-0001');
  assert.equal(rec.ts, NOW - 1000);
  assert.equal(rec.received_at, NOW);
  assert.deepEqual(rec.out_of_range, []);
  for (const s of SENSORS) assert.equal(typeof rec[s.name], 'number');
});

test('implausible but well-formed values flow on, flagged', () => {
  const rec = parseTelemetry(TOPIC, json(reading({ coolant_temp: 1976, battery_percentage: -12.5 })), NOW, LIMITS);
  assert.equal(rec.coolant_temp, 1976);
  assert.equal(rec.battery_percentage, -12.5);
  assert.deepEqual(rec.out_of_range, ['coolant_temp', 'battery_percentage']);
});

test('ignition_on is optional: reported as given, null when absent', () => {
  assert.equal(parseTelemetry(TOPIC, json(reading({ ignition_on: false })), NOW, LIMITS).ignition_on, false);
  assert.equal(parseTelemetry(TOPIC, json(reading({ ignition_on: true })), NOW, LIMITS).ignition_on, true);
  assert.equal(parseTelemetry(TOPIC, json(reading()), NOW, LIMITS).ignition_on, null);
});

test('unknown extra fields are ignored (forward compatible)', () => {
  const rec = parseTelemetry(TOPIC, json(reading({ note: 'x' })), NOW, LIMITS);
  assert.equal(rec['note'], undefined);
});

const refusals: Array<[string, string, Buffer | (() => Buffer), string]> = [
  ['topic with extra level', 'vehicles/car-1/engine/telemetry', json(reading()), 'topic.invalid'],
  ['wrong topic', 'cars/car-1/telemetry', json(reading()), 'topic.invalid'],
  ['vehicle id with bad chars', 'vehicles/car 1$/telemetry', json(reading()), 'vehicle_id.invalid'],
  ['vehicle id too long', `vehicles/${'x'.repeat(65)}/telemetry`, json(reading()), 'vehicle_id.invalid'],
  ['vehicle id "."', 'vehicles/./telemetry', json(reading()), 'vehicle_id.invalid'],
  ['vehicle id ".."', 'vehicles/../telemetry', json(reading()), 'vehicle_id.invalid'],
  ['vehicle id "..."', 'vehicles/.../telemetry', json(reading()), 'vehicle_id.invalid'],
  ['oversized payload', TOPIC, Buffer.alloc(9000, 0x20), 'payload.too_large'],
  ['not JSON', TOPIC, Buffer.from('hello'), 'payload.not_json'],
  ['NaN token', TOPIC, Buffer.from(JSON.stringify(reading()).replace(/"speed":[^,]+/, '"speed":NaN')), 'payload.not_json'],
  ['invalid UTF-8', TOPIC, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'payload.not_json'],
  ['JSON array', TOPIC, json([1, 2]), 'payload.not_object'],
  ['JSON string', TOPIC, json('hi'), 'payload.not_object'],
  ['missing sensor', TOPIC, json(reading({ speed: undefined })), 'field.missing'],
  ['null sensor', TOPIC, json(reading({ coolant_temp: null })), 'field.missing'],
  ['missing ts', TOPIC, json(reading({ ts: undefined })), 'field.missing'],
  ['string number', TOPIC, json(reading({ speed: '88.1' })), 'field.type'],
  ['boolean sensor', TOPIC, json(reading({ throttle_pos: true })), 'field.type'],
  ['ignition_on not a boolean', TOPIC, json(reading({ ignition_on: 'off' })), 'field.type'],
  ['Infinity via overflow', TOPIC, Buffer.from(JSON.stringify(reading()).replace(/"speed":[^,]+/, '"speed":1e400')), 'field.not_finite'],
  ['fractional int sensor', TOPIC, json(reading({ tire_pressure_1_1: 231.5 })), 'field.not_integer'],
  ['int sensor beyond int32', TOPIC, json(reading({ control_unit_firmware: 2 ** 40 })), 'field.not_integer'],
  ['fractional ts', TOPIC, json(reading({ ts: NOW - 0.5 })), 'field.not_integer'],
  ['ts in seconds, not ms', TOPIC, json(reading({ ts: Math.floor(NOW / 1000) })), 'ts.out_of_range'],
  ['ts far in the future', TOPIC, json(reading({ ts: NOW + 3_600_000 })), 'ts.out_of_range'],
];

for (const [name, topic, payload, reason] of refusals) {
  test(`refuses ${name} with reason ${reason}`, () => {
    const buf = typeof payload === 'function' ? payload() : payload;
    assert.throws(
      () => parseTelemetry(topic, buf, NOW, LIMITS),
      (err: unknown) => err instanceof InvalidInputError && err.reason === reason && err.retriable === false,
    );
  });
}

// Two healthy rows of the reference demo's CSV (car1's first, and the same car with car2's tires) and a failing one.
const CARDATA_ROWS: Readonly<Record<string, number>>[] = [CARDATA_HEALTHY, { ...CARDATA_HEALTHY, tire_pressure_1_1: 31, tire_pressure_2_1: 31, tire_pressure_2_2: 33 }, CARDATA_FAILING];

test('fleet profile cardata-v1: values converted to Pitwall units, only real anomalies flagged', () => {
  const cardata = loadFleetProfile('cardata-v1', 'INGEST_FLEET_PROFILE');
  const flags = (profile?: ReturnType<typeof loadFleetProfile>) => CARDATA_ROWS.map((r) => parseTelemetry(TOPIC, json({ ts: NOW - 1000, ...r }), NOW, LIMITS, profile).out_of_range);
  // Read as Pitwall's own units every row is out of range (a 12 V battery, kPa tires, vibration in mm/s).
  const tires = ['tire_pressure_1_1', 'tire_pressure_1_2', 'tire_pressure_2_1', 'tire_pressure_2_2'];
  assert.deepEqual(flags(), [
    ['battery_voltage', 'engine_vibration_amplitude', ...tires],
    ['battery_voltage', 'engine_vibration_amplitude', ...tires],
    ['coolant_temp', 'battery_percentage', 'battery_voltage', 'engine_vibration_amplitude', ...tires],
  ]);
  // With its profile: the healthy rows are clean; the sick one shows its boiling coolant and drained battery.
  assert.deepEqual(flags(cardata), [[], [], ['coolant_temp', 'battery_percentage']]);
  const rec = parseTelemetry(TOPIC, json({ ts: NOW - 1000, ...CARDATA_ROWS[0] }), NOW, LIMITS, cardata);
  assert.equal(rec.tire_pressure_1_1, 221); // 32 psi, rounded kPa (an int sensor)
  assert.equal(rec.tire_pressure_2_1, 234);
  assert.ok(Math.abs((rec.battery_percentage as number) - 82.654595) < 1e-9);
  assert.equal(rec.battery_voltage, 246.12367);
  assert.equal(rec.coolant_temp, 39.395103);
});

test('fleet profile: renamed fields are read by their payload name, and errors name that field', () => {
  const profile = parseFleetProfile({ profile: 'upper', sensors: { coolant_temp: { field: 'COOLANT_TEMP', unit: '°F' }, tire_pressure_1_1: { field: 'TIRE_PRESSURE11', unit: 'psi' } } }, 'upper.json');
  const r = reading();
  delete r.coolant_temp;
  delete r.tire_pressure_1_1;
  const rec = parseTelemetry(TOPIC, json({ ...r, COOLANT_TEMP: 212, TIRE_PRESSURE11: 32.5 }), NOW, LIMITS, profile);
  assert.ok(Math.abs((rec.coolant_temp as number) - 100) < 1e-9);
  assert.equal(rec.tire_pressure_1_1, 224); // 32.5 psi: a fraction is fine before conversion
  assert.equal('COOLANT_TEMP' in rec, false);
  assert.throws(
    () => parseTelemetry(TOPIC, json(r), NOW, LIMITS, profile),
    (err: unknown) => err instanceof InvalidInputError && err.reason === 'field.missing' && /field "COOLANT_TEMP" is missing/.test(err.message),
  );
  // A converted integer sensor beyond any integer: dead-lettered, never an Avro encoding failure.
  assert.throws(
    () => parseTelemetry(TOPIC, json({ ...r, COOLANT_TEMP: 50, TIRE_PRESSURE11: 1e300 }), NOW, LIMITS, profile),
    (err: unknown) => err instanceof InvalidInputError && err.reason === 'field.not_integer' && /TIRE_PRESSURE11/.test(err.message),
  );
});
