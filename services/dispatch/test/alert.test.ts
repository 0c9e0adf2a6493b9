import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { defaultSchemasDir } from '@pitwall/common';
import { alertPayload, alertPublications, type AlertRecord } from '../src/handlers/alert.js';
import { createRecentSet } from '../src/recent.js';
import { readDispatchConfig } from '../src/config.js';

const golden = JSON.parse(readFileSync(`${defaultSchemasDir()}fixtures/alert.v1.json`, 'utf8')) as AlertRecord;

test('an alert goes to the car and to the fleet topic with the same JSON', () => {
  const pubs = alertPublications(golden, 'fleet/alerts');
  assert.deepEqual(pubs.map((p) => p.topic), ['vehicles/car-0007/alerts', 'fleet/alerts']);
  assert.equal(pubs[0]!.payload, pubs[1]!.payload);
  const body = JSON.parse(pubs[0]!.payload);
  assert.equal(body.schema, 'pitwall.alert.v1');
  assert.equal(body.alertId, golden.alert_id);
  assert.deepEqual(body.model, { name: 'pitwall-ae', version: '1' });
  assert.equal(body.contributors[0].sensor, 'coolant_temp');
});

test('the summary names the component, the sensors with shares, and the action', () => {
  const { summary } = alertPayload(golden) as { summary: string };
  assert.equal(summary, 'cooling system: coolant_temp 72%, speed 10%. Check coolant level, thermostat and radiator fan.');
  const small = alertPayload({ ...golden, contributors: [golden.contributors[0]!, { ...golden.contributors[1]!, share: 0.01 }] }) as { summary: string };
  assert.equal(small.summary, 'cooling system: coolant_temp 72%. Check coolant level, thermostat and radiator fan.');
  const bare = alertPayload({ ...golden, contributors: [] }) as { summary: string };
  assert.match(bare.summary, /anomaly score 42.50 over threshold 3.25/);
});

test('recent set evicts the oldest id beyond capacity', () => {
  const r = createRecentSet(2);
  r.add('a');
  r.add('b');
  r.add('c');
  assert.deepEqual([r.has('a'), r.has('b'), r.has('c')], [false, true, true]);
});

test('config: a bad HEALTH_PORT fails naming the variable', () => {
  assert.throws(() => readDispatchConfig({ HEALTH_PORT: '70000' }), /HEALTH_PORT: must be <= 65535/);
  assert.equal(readDispatchConfig({}).fleetTopic, 'fleet/alerts');
});
