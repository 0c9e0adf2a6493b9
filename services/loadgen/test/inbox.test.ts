import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt-packet';
import { createInbox, subscriptionBatches } from '../src/inbox.js';
import type { AlertEvent } from '../src/messages.js';

const packet = (incidentId: string, revision: number): IPublishPacket => ({
  cmd: 'publish',
  qos: 1,
  dup: false,
  retain: false,
  topic: '',
  payload: '',
  properties: { correlationData: Buffer.from(incidentId), userProperties: { revision: String(revision) } },
});
const alert = (incidentId: string, revision: number) =>
  Buffer.from(JSON.stringify({ schema: 'pitwall.alert.v2', incident_id: incidentId, revision, area: 'cooling', severity: 'LOW', opened_at: 1000 }));

test('a topic per car, never a wildcard, at most 500 per SUBSCRIBE', () => {
  assert.deepEqual(subscriptionBatches(['a-1', 'a-2']), [['vehicles/a-1/alerts', 'vehicles/a-1/maintenance', 'vehicles/a-2/alerts', 'vehicles/a-2/maintenance']]);
  const batches = subscriptionBatches(Array.from({ length: 300 }, (_, i) => `g-${i}`));
  assert.deepEqual(
    batches.map((b) => b.length),
    [500, 100],
  );
  assert.ok(batches.flat().every((t) => !t.includes('+') && !t.includes('#')));
});

test('each first-seen alert is confirmed with a receipt and reported with its opened_at; repeats are counted', () => {
  const receipts: [string, string][] = [];
  const alerts: AlertEvent[] = [];
  let duplicates = 0;
  let states = 0;
  const inbox = createInbox({
    vehicleIds: ['p-00001-0001'],
    sendReceipt: (t, p) => receipts.push([t, p]),
    onAlert: (e) => alerts.push(e),
    onDuplicate: () => duplicates++,
    onMaintenance: () => states++,
    now: () => 5000,
  });
  inbox.handle('vehicles/p-00001-0001/alerts', alert('inc-1', 1), packet('inc-1', 1));
  inbox.handle('vehicles/p-00001-0001/alerts', alert('inc-1', 1), packet('inc-1', 1));
  inbox.handle('vehicles/p-00001-0001/alerts', alert('inc-1', 2), packet('inc-1', 2));
  inbox.handle('vehicles/other/alerts', alert('inc-9', 1), packet('inc-9', 1));
  inbox.handle('vehicles/p-00001-0001/maintenance', Buffer.from('{"status":"attention","open_incidents":[{}]}'), packet('x', 0));
  assert.deepEqual(receipts, [
    ['vehicles/p-00001-0001/alerts/receipt', '{"incident_id":"inc-1","revision":1,"received_at":5000}'],
    ['vehicles/p-00001-0001/alerts/receipt', '{"incident_id":"inc-1","revision":2,"received_at":5000}'],
  ]);
  assert.deepEqual(alerts[0], { vehicleId: 'p-00001-0001', incidentId: 'inc-1', revision: 1, severity: 'LOW', openedAt: 1000, area: 'cooling', receivedAt: 5000 });
  assert.equal(alerts.length, 2);
  assert.equal(duplicates, 1);
  assert.equal(states, 1);
  assert.deepEqual(inbox.withState(), ['p-00001-0001']);
});
