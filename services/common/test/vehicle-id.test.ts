import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError } from '../src/errors.js';
import { checkVehicleId, isVehicleId } from '../src/vehicle-id.js';

test('vehicle ids: 1-64 of [A-Za-z0-9_.-], not only dots', () => {
  for (const ok of ['car-0001', 'a', 'x'.repeat(64), 'car.1', '.car', 'car..', '-', '_', 'a.b.c']) assert.equal(isVehicleId(ok), true, ok);
  for (const bad of ['', '.', '..', '...', 'x'.repeat(65), 'car 1', 'car/1', 'car#1', 'cär', '+', '$share']) assert.equal(isVehicleId(bad), false, bad);
});

test('checkVehicleId throws vehicle_id.invalid with the rule', () => {
  assert.equal(checkVehicleId('car-7'), 'car-7');
  assert.throws(
    () => checkVehicleId('..', { topic: 'vehicles/../telemetry' }),
    (e: unknown) => e instanceof InvalidInputError && e.reason === 'vehicle_id.invalid' && /not only dots/.test(e.message) && e.context.topic === 'vehicles/../telemetry',
  );
});
