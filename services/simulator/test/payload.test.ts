import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SENSOR_NAMES } from '@pitwall/common';
import { createFleet } from '../src/fleet.js';
import { payloadJson, toPayload } from '../src/payload.js';

test('payloadJson is JSON.stringify(toPayload(r)) for a fleet of failing and healthy cars', () => {
  const fleet = createFleet({
    cars: 20,
    seed: 7,
    failures: [
      { vehicleId: 'car-0001', mode: 'coolant_overheat', onsetTs: 10_000, rampMs: 20_000 },
      { vehicleId: 'car-0002', mode: 'faulty_sensor', onsetTs: 0 },
    ],
  });
  let n = 0;
  for (let ts = 1_700_000_000_000; n < 2_000; ts += 1_000) {
    for (const r of fleet.tick(ts)) {
      assert.equal(payloadJson(r), JSON.stringify(toPayload(r)));
      n++;
    }
  }
});

test('payloadJson writes numbers as JSON does, and refuses a reading that lacks a sensor', () => {
  const values = Object.fromEntries(SENSOR_NAMES.map((name) => [name, 1]));
  for (const v of [0, -0, 1e21, -1.5e-7, 0.1 + 0.2, NaN, Infinity, -Infinity, Number.MAX_VALUE]) {
    const r = { vehicleId: 'x', ts: 1, values: { ...values, speed: v } };
    assert.equal(payloadJson(r), JSON.stringify(toPayload(r)), String(v));
  }
  assert.throws(() => payloadJson({ vehicleId: 'x', ts: 1, values: { speed: 1 } }), /lacks/);
});
