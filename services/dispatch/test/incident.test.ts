import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { defaultSchemasDir } from '@pitwall/common';
import { alertPublication, fleetPublication, handleIncident, handleTombstone, maintenancePayload, maintenancePublication } from '../src/handlers/incident.js';
import { createIncidentView } from '../src/view.js';
import { readDispatchConfig } from '../src/config.js';
import { incident } from '@pitwall/common/testing';

const CONFIG = { fleetTopic: 'fleet/incidents', alertExpirySeconds: 3600 };
const never = (): boolean => false;

test('the fixture is a valid incident v1 record (keeps the tests honest about the schema)', () => {
  const schema = JSON.parse(readFileSync(`${defaultSchemasDir()}incident/v1.avsc`, 'utf8'));
  const type = avro.Type.forSchema(schema, { wrapUnions: false });
  assert.ok(type.isValid(incident()));
});

test('alert: topic, MQTT 5 properties and the pitwall.alert.v2 payload', () => {
  const p = alertPublication(incident({ revision: 3, severity: 'CRITICAL' }), 3600);
  assert.equal(p.topic, 'vehicles/car-0007/alerts');
  assert.equal(p.options.qos, 1);
  assert.equal(p.options.retain, undefined);
  assert.equal(p.options.properties?.contentType, 'application/json');
  assert.equal(p.options.properties?.messageExpiryInterval, 3600);
  assert.deepEqual(p.options.properties?.correlationData, Buffer.from('inc-1'));
  assert.deepEqual(p.options.properties?.userProperties, { revision: '3', severity: 'CRITICAL' });
  assert.deepEqual(JSON.parse(p.payload), {
    schema: 'pitwall.alert.v2',
    incident_id: 'inc-1',
    revision: 3,
    vehicle_id: 'car-0007',
    status: 'OPEN',
    severity: 'CRITICAL',
    area: 'cooling',
    component: 'cooling system',
    action: 'Check coolant level, thermostat and radiator fan.',
    score: 12.5,
    threshold: 3.25,
    model: { name: 'pitwall-ae', version: '1' },
    contributors: incident().contributors,
    opened_at: 1_700_000_000_000,
    updated_at: 1_700_000_060_000,
  });
});

test('fleet: the whole incident with its schema tag', () => {
  const p = fleetPublication(incident({ acknowledged_by: 'ana' }), 'ops/incidents');
  assert.equal(p.topic, 'ops/incidents');
  const body = JSON.parse(p.payload);
  assert.equal(body.schema, 'pitwall.incident.v1');
  assert.equal(body.acknowledged_by, 'ana');
  assert.deepEqual(Object.keys(body).slice(1), Object.keys(incident()));
});

test('which changes alert the car', () => {
  const rows: [string, string, boolean][] = [
    ['OPENED', 'OPEN', true],
    ['ESCALATED', 'OPEN', true],
    ['REOPENED', 'OPEN', true],
    ['UPDATED', 'OPEN', false],
    ['DELIVERED', 'OPEN', false],
    ['ACKNOWLEDGED', 'ACKNOWLEDGED', false],
    ['RESOLVED', 'RESOLVED', false],
    ['CLEARED', 'CLEARED', false],
  ];
  for (const [change, status, alerts] of rows) {
    const out = handleIncident(incident({ last_change: change as never, status: status as never }), createIncidentView(), never, CONFIG);
    assert.equal(out.alert === 'send', alerts, change);
    assert.deepEqual(
      out.publications.map((p) => p.topic),
      [...(alerts ? ['vehicles/car-0007/alerts'] : []), 'fleet/incidents'],
      change,
    );
    assert.equal(out.maintenanceFor, 'car-0007');
    assert.equal(out.alertKey, alerts ? `inc-1#1` : undefined, change);
  }
});

test('an alert revision already sent is not sent again; a new revision is', () => {
  const view = createIncidentView();
  const sent = new Set<string>();
  const first = handleIncident(incident(), view, (k) => sent.has(k), CONFIG);
  sent.add(first.alertKey!);
  assert.equal(handleIncident(incident(), view, (k) => sent.has(k), CONFIG).alert, 'already-sent');
  const escalated = handleIncident(incident({ revision: 2, last_change: 'ESCALATED', severity: 'CRITICAL' }), view, (k) => sent.has(k), CONFIG);
  assert.equal(escalated.alert, 'send');
  assert.equal(escalated.alertKey, 'inc-1#2');
});

test('a replayed OPENED of an incident closed since raises no alert, and the state stays ok', () => {
  const view = createIncidentView();
  view.apply(incident({ revision: 4, status: 'CLEARED', last_change: 'CLEARED', updated_at: 1_700_000_900_000, closed_at: 1_700_000_900_000 }));
  const out = handleIncident(incident(), view, never, CONFIG);
  assert.equal(out.alert, 'closed-since');
  assert.deepEqual(
    out.publications.map((p) => p.topic),
    ['fleet/incidents'],
  );
  assert.equal(JSON.parse(maintenancePublication('car-0007', view).payload).status, 'ok');
});

test('a replayed OPENED of an incident still open (acknowledged since) is alerted again', () => {
  const view = createIncidentView();
  view.apply(incident({ revision: 3, status: 'ACKNOWLEDGED', last_change: 'ACKNOWLEDGED', acknowledged_by: 'ana' }));
  assert.equal(handleIncident(incident(), view, never, CONFIG).alert, 'send');
  // The maintenance state keeps the newer revision.
  const state = maintenancePayload('car-0007', view) as { open_incidents: { revision: number; status: string }[] };
  assert.deepEqual(
    state.open_incidents.map((i) => [i.revision, i.status]),
    [[3, 'ACKNOWLEDGED']],
  );
});

test('maintenance state: retained, every open incident of the vehicle, ok once all are closed', () => {
  const view = createIncidentView();
  handleIncident(incident({ incident_id: 'b', area: 'tires', opened_at: 2_000, updated_at: 5_000 }), view, never, CONFIG);
  handleIncident(incident({ incident_id: 'a', opened_at: 1_000, updated_at: 4_000, severity: 'LOW' }), view, never, CONFIG);
  handleIncident(incident({ incident_id: 'other', vehicle_id: 'car-0001' }), view, never, CONFIG);
  const p = maintenancePublication('car-0007', view);
  assert.equal(p.topic, 'vehicles/car-0007/maintenance');
  assert.equal(p.options.retain, true);
  assert.equal(p.options.qos, 1);
  assert.equal(p.options.properties?.contentType, 'application/json');
  assert.deepEqual(JSON.parse(p.payload), {
    schema: 'pitwall.maintenance.v1',
    vehicle_id: 'car-0007',
    status: 'attention',
    open_incidents: [
      { incident_id: 'a', area: 'cooling', component: 'cooling system', action: incident().action, severity: 'LOW', status: 'OPEN', opened_at: 1_000, revision: 1 },
      { incident_id: 'b', area: 'tires', component: 'cooling system', action: incident().action, severity: 'HIGH', status: 'OPEN', opened_at: 2_000, revision: 1 },
    ],
    updated_at: 5_000,
  });
  handleIncident(incident({ incident_id: 'a', revision: 2, status: 'RESOLVED', last_change: 'RESOLVED', updated_at: 6_000 }), view, never, CONFIG);
  handleIncident(incident({ incident_id: 'b', revision: 2, status: 'CLEARED', last_change: 'CLEARED', updated_at: 7_000 }), view, never, CONFIG);
  assert.deepEqual(JSON.parse(maintenancePublication('car-0007', view).payload), {
    schema: 'pitwall.maintenance.v1',
    vehicle_id: 'car-0007',
    status: 'ok',
    open_incidents: [],
    updated_at: 7_000,
  });
});

test('a tombstone forgets the incident and names its vehicle once', () => {
  const view = createIncidentView();
  view.apply(incident());
  assert.deepEqual(handleTombstone('inc-1', view), { maintenanceFor: 'car-0007' });
  assert.deepEqual(handleTombstone('inc-1', view), { maintenanceFor: undefined });
  assert.equal(JSON.parse(maintenancePublication('car-0007', view).payload).status, 'ok');
});

test('config: defaults and errors naming the variable', () => {
  const c = readDispatchConfig({});
  assert.equal(c.fleetTopic, 'fleet/incidents');
  assert.equal(c.alertExpirySeconds, 86_400);
  assert.equal(c.topics.incidents, 'maintenance.incidents');
  assert.equal(c.dlqTopic, 'maintenance.incidents.dlq');
  assert.equal(readDispatchConfig({ DISPATCH_ALERT_EXPIRY_S: '60' }).alertExpirySeconds, 60);
  assert.throws(() => readDispatchConfig({ DISPATCH_ALERT_EXPIRY_S: '0' }), /DISPATCH_ALERT_EXPIRY_S: must be >= 1/);
  assert.throws(() => readDispatchConfig({ HEALTH_PORT: '70000' }), /HEALTH_PORT: must be <= 65535/);
});
