import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError, SENSORS } from '@pitwall/common';
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
