import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt';
import { silentLogger } from '@pitwall/common';
import { carTopic, createCarInbox, inboxSubscriptions, parseAlert, parseMaintenance, receiptFor, type InboxClient } from '../src/inbox.js';
import { readSimulatorConfig } from '../src/config.js';

const ALERT = {
  schema: 'pitwall.alert.v2',
  incident_id: 'inc-payload',
  revision: 2,
  vehicle_id: 'car-0001',
  status: 'OPEN',
  severity: 'HIGH',
  area: 'cooling',
  component: 'cooling system',
  action: 'Check coolant level.',
};
const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const props = (p: NonNullable<IPublishPacket['properties']>): IPublishPacket['properties'] => p;

test('car topics', () => {
  assert.deepEqual(carTopic('vehicles/car-0001/alerts'), { kind: 'alert', vehicleId: 'car-0001' });
  assert.deepEqual(carTopic('vehicles/car-0001/maintenance'), { kind: 'maintenance', vehicleId: 'car-0001' });
  assert.equal(carTopic('vehicles/car-0001/alerts/receipt'), undefined);
  assert.equal(carTopic('vehicles/car-0001/telemetry'), undefined);
  assert.equal(carTopic('fleet/incidents'), undefined);
});

test('alert: incident id from correlationData first, then the payload', () => {
  const rows: [string, Buffer, IPublishPacket['properties'], string | null, number | null, string | null][] = [
    ['correlation wins', json(ALERT), props({ correlationData: Buffer.from('inc-corr'), userProperties: { revision: '5', severity: 'LOW' } }), 'inc-corr', 2, 'HIGH'],
    ['payload fallback', json(ALERT), undefined, 'inc-payload', 2, 'HIGH'],
    ['empty correlation', json(ALERT), props({ correlationData: Buffer.alloc(0) }), 'inc-payload', 2, 'HIGH'],
    ['properties only', Buffer.from('not json'), props({ correlationData: Buffer.from('inc-corr'), userProperties: { revision: '5', severity: 'LOW' } }), 'inc-corr', 5, 'LOW'],
    ['no revision anywhere', json({ incident_id: 'x' }), undefined, 'x', null, null],
    ['bad revision', json({ incident_id: 'x', revision: 'two' }), props({ userProperties: { revision: 'two' } }), 'x', null, null],
    ['nothing to confirm', json({ severity: 'HIGH' }), undefined, null, null, null],
  ];
  for (const [name, payload, properties, incidentId, revision, severity] of rows) {
    if (incidentId === null) {
      assert.throws(() => parseAlert('car-0001', payload, properties), /without incident id/, name);
      continue;
    }
    const a = parseAlert('car-0001', payload, properties);
    assert.deepEqual([a.vehicleId, a.incidentId, a.revision, a.severity], ['car-0001', incidentId, revision, severity], name);
  }
  assert.deepEqual(parseAlert('car-0001', json(ALERT), undefined), {
    vehicleId: 'car-0001',
    incidentId: 'inc-payload',
    revision: 2,
    severity: 'HIGH',
    component: 'cooling system',
    action: 'Check coolant level.',
  });
});

test("receipt: to the car's own receipt topic; revision only when known", () => {
  const alert = parseAlert('car-0003', json(ALERT), props({ correlationData: Buffer.from('inc-9') }));
  assert.deepEqual(receiptFor(alert, 1234), { topic: 'vehicles/car-0003/alerts/receipt', payload: '{"incident_id":"inc-9","revision":2,"received_at":1234}' });
  assert.equal(receiptFor({ ...alert, revision: null }, 1234).payload, '{"incident_id":"inc-9","received_at":1234}');
});

test('maintenance state', () => {
  assert.deepEqual(parseMaintenance(json({ status: 'attention', open_incidents: [{}, {}] })), { status: 'attention', open: 2 });
  assert.deepEqual(parseMaintenance(json({ status: 'ok', open_incidents: [] })), { status: 'ok', open: 0 });
  assert.equal(parseMaintenance(Buffer.alloc(0)), undefined);
  assert.equal(parseMaintenance(Buffer.from('{')), undefined);
  assert.equal(parseMaintenance(json({ open_incidents: [] })), undefined);
});

test('subscriptions: per car for small fleets, wildcards for large ones', () => {
  assert.deepEqual(inboxSubscriptions(['a', 'b']), ['vehicles/a/alerts', 'vehicles/a/maintenance', 'vehicles/b/alerts', 'vehicles/b/maintenance']);
  const big = Array.from({ length: 201 }, (_, i) => `c${i}`);
  assert.deepEqual(inboxSubscriptions(big), ['vehicles/+/alerts', 'vehicles/+/maintenance']);
});

function fakeClient() {
  let listener: ((topic: string, payload: Buffer, packet: IPublishPacket) => void) | undefined;
  const published: { topic: string; payload: string }[] = [];
  const client: InboxClient = {
    on: (_e, l) => (listener = l),
    off: () => (listener = undefined),
    subscribeAsync: async () => [],
    publish(topic, message, _o, cb) {
      published.push({ topic, payload: message });
      cb();
    },
  };
  const deliver = (topic: string, payload: Buffer, properties?: IPublishPacket['properties']): void =>
    listener?.(topic, payload, { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, ...(properties ? { properties } : {}) });
  return { client, published, deliver };
}

test('inbox: confirms each alert of its fleet once, ignores other fleets, tracks maintenance', async () => {
  const fake = fakeClient();
  const seen: string[] = [];
  const inbox = createCarInbox({ client: fake.client, vehicleIds: ['car-0001', 'car-0002'], log: silentLogger, receipts: true, now: () => 77, onAlert: (a) => seen.push(a.incidentId) });
  await inbox.start();
  const p = props({ correlationData: Buffer.from('inc-1') });
  fake.deliver('vehicles/car-0001/alerts', json(ALERT), p);
  fake.deliver('vehicles/car-0001/alerts', json(ALERT), p); // redelivery
  fake.deliver('vehicles/car-0001/alerts', json({ ...ALERT, revision: 3 }), p); // escalation
  fake.deliver('vehicles/other-0001/alerts', json(ALERT), p);
  fake.deliver('vehicles/car-0002/maintenance', json({ status: 'attention', open_incidents: [{}] }));
  assert.deepEqual(fake.published, [
    { topic: 'vehicles/car-0001/alerts/receipt', payload: '{"incident_id":"inc-1","revision":2,"received_at":77}' },
    { topic: 'vehicles/car-0001/alerts/receipt', payload: '{"incident_id":"inc-1","revision":3,"received_at":77}' },
  ]);
  assert.deepEqual(seen, ['inc-1', 'inc-1']);
  assert.equal(inbox.maintenance('car-0002'), 'attention');
  assert.equal(inbox.maintenance('car-0001'), undefined);
  const stats = inbox.stats();
  assert.equal(stats.simulator_alerts_received_total, 2);
  assert.equal(stats.simulator_alert_duplicates_total, 1);
  assert.equal(stats.simulator_receipts_sent_total, 2);
  inbox.stop();
  fake.deliver('vehicles/car-0002/alerts', json(ALERT), p);
  assert.equal(fake.published.length, 2, 'nothing after stop');
});

test('inbox: SIM_RECEIPTS=false still counts alerts but sends nothing', async () => {
  const fake = fakeClient();
  const inbox = createCarInbox({ client: fake.client, vehicleIds: ['car-0001'], log: silentLogger, receipts: false });
  await inbox.start();
  fake.deliver('vehicles/car-0001/alerts', json(ALERT));
  assert.deepEqual(fake.published, []);
  assert.equal(inbox.stats().simulator_alerts_received_total, 1);
});

test('config: SIM_RECEIPTS', () => {
  assert.equal(readSimulatorConfig({}).receipts, true);
  assert.equal(readSimulatorConfig({ SIM_RECEIPTS: 'false' }).receipts, false);
  assert.throws(() => readSimulatorConfig({ SIM_RECEIPTS: 'maybe' }), /SIM_RECEIPTS: expected true or false/);
});
