import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aclBindings, KAFKA_SERVICE_IDENTITIES, serviceGrants, type KafkaServiceIdentity } from '../src/kafka-acl.js';

// What each service may touch with the default names (services/*/src/config.ts).
const defaults: Array<[KafkaServiceIdentity, { read: string[]; write: string[]; groupPrefixes: string[]; transactionalIdPrefixes: string[] }]> = [
  ['ingest', { read: [], write: ['vehicle.telemetry', 'vehicle.receipts', 'vehicle.telemetry.dlq'], groupPrefixes: [], transactionalIdPrefixes: [] }],
  [
    'windowing',
    {
      read: ['vehicle.telemetry', 'pitwall-windowing.floors'],
      write: ['vehicle.telemetry', 'vehicle.features', 'vehicle.telemetry.dlq', 'vehicle.telemetry.late', 'pitwall-windowing.floors'],
      groupPrefixes: ['pitwall-windowing'],
      transactionalIdPrefixes: ['pitwall-windowing'],
    },
  ],
  [
    'scoring',
    {
      read: ['vehicle.features', 'model.updates'],
      write: ['maintenance.alerts', 'vehicle.scores', 'vehicle.features.dlq', 'model.shadow', 'model.drift'],
      groupPrefixes: ['pitwall-scoring'],
      transactionalIdPrefixes: [],
    },
  ],
  [
    'incidents',
    {
      read: ['vehicle.scores', 'maintenance.incident-commands', 'vehicle.receipts', 'maintenance.incidents'],
      write: ['maintenance.incidents', 'maintenance.incidents.dlq'],
      groupPrefixes: ['pitwall-incidents'],
      transactionalIdPrefixes: ['pitwall-incidents'],
    },
  ],
  ['dispatch', { read: ['maintenance.incidents'], write: ['maintenance.incidents.dlq'], groupPrefixes: ['pitwall-dispatch'], transactionalIdPrefixes: [] }],
  [
    'console',
    {
      read: ['maintenance.incidents', 'vehicle.scores', 'vehicle.telemetry', 'console.sessions', 'model.drift'],
      write: ['maintenance.incident-commands', 'console.sessions', 'console.audit'],
      groupPrefixes: ['pitwall-console'],
      transactionalIdPrefixes: [],
    },
  ],
];
for (const [service, expected] of defaults) {
  test(`${service}: grants for the default names`, () => assert.deepEqual(serviceGrants(service, {}), expected));
}

test('every service identity has a row', () =>
  assert.deepEqual(
    defaults.map(([s]) => s),
    [...KAFKA_SERVICE_IDENTITIES],
  ));

test('names follow the same variables as the services', () => {
  const g = serviceGrants('windowing', { TOPIC_TELEMETRY: 'e2e.x.t', WINDOWING_GROUP_ID: 'e2e.x.w', WINDOWING_TRANSACTIONAL_ID_PREFIX: 'e2e.x.tx' });
  assert.deepEqual(g.read, ['e2e.x.t', 'e2e.x.w.floors']);
  assert.deepEqual(g.groupPrefixes, ['e2e.x.w']);
  assert.deepEqual(g.transactionalIdPrefixes, ['e2e.x.tx']);
  assert.deepEqual(serviceGrants('dispatch', { TOPIC_INCIDENTS: 'e2e.x.inc' }).write, ['e2e.x.inc.dlq']);
});

test('bindings: topics literal, groups and transactional ids prefixed, ALLOW only, no ALL', () => {
  const b = aclBindings('incidents', serviceGrants('incidents', {}));
  assert.ok(b.every((x) => x.principal === 'User:incidents' && x.permissionType === 3 && x.operation !== 2 && x.host === '*'));
  assert.ok(b.filter((x) => x.resourceType === 2).every((x) => x.resourcePatternType === 3));
  assert.ok(b.filter((x) => x.resourceType !== 2).every((x) => x.resourcePatternType === 4));
  const ops = (name: string): number[] =>
    b
      .filter((x) => x.resourceType === 2 && x.resourceName === name)
      .map((x) => x.operation)
      .sort((p, q) => p - q);
  assert.deepEqual(ops('maintenance.incidents'), [3, 4, 5, 8, 10]); // read, write, create, describe, describe_configs
  assert.deepEqual(ops('vehicle.scores'), [3, 5, 8, 10]); // no write
  assert.deepEqual(ops('maintenance.incidents.dlq'), [4, 5, 8, 10]); // no read
  assert.deepEqual(ops('vehicle.telemetry'), []);
  // Ingest may not touch the incidents at all.
  assert.ok(!aclBindings('ingest', serviceGrants('ingest', {})).some((x) => x.resourceName.startsWith('maintenance.')));
});
