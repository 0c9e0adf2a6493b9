import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssignerProtocol } from 'kafkajs';
import { ConfigError } from '@pitwall/common';
import { coPartitionedAssigner, coPartitionedAssignment } from '../src/assigner.js';
import { readIncidentsConfig } from '../src/config.js';
import { vehiclePartition } from '../src/incidents.js';

const TOPICS = { scores: [0, 1, 2, 3, 4], commands: [0, 1, 2, 3, 4], receipts: [0, 1, 2, 3, 4] };

test('co-partitioned assignment: every partition number goes to one member for all topics', () => {
  const cases: { members: string[]; topics: Record<string, number[]> }[] = [
    { members: ['m1'], topics: TOPICS },
    { members: ['b', 'a'], topics: TOPICS },
    { members: ['c', 'a', 'b'], topics: TOPICS },
    { members: ['a', 'b', 'c', 'd', 'e', 'f', 'g'], topics: TOPICS },
    { members: ['a', 'b'], topics: { x: [0, 1, 2], y: [0, 1] } },
  ];
  for (const { members, topics } of cases) {
    const result = coPartitionedAssignment(members, topics);
    assert.deepEqual([...result.keys()].sort(), [...members].sort(), 'every member gets an entry');
    const ownerOf = new Map<string, string>();
    for (const [member, assignment] of result) {
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const p of partitions) {
          assert.equal(ownerOf.has(`${topic}/${p}`), false, `${topic}/${p} assigned twice`);
          ownerOf.set(`${topic}/${p}`, member);
        }
      }
    }
    for (const [topic, partitions] of Object.entries(topics)) {
      for (const p of partitions) {
        const owner = ownerOf.get(`${topic}/${p}`);
        assert.ok(owner, `${topic}/${p} unassigned`);
        for (const other of Object.keys(topics)) {
          if (topics[other]!.includes(p)) assert.equal(ownerOf.get(`${other}/${p}`), owner, `partition ${p} split between members`);
        }
      }
    }
    const loads = [...result.values()].map((a) => new Set(Object.values(a).flat()).size);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, `balanced: ${loads.join(',')}`);
  }
});

test('co-partitioned assignment is the same whatever the member order', () => {
  const a = coPartitionedAssignment(['x', 'y', 'z'], TOPICS);
  const b = coPartitionedAssignment(['z', 'x', 'y'], TOPICS);
  assert.deepEqual(Object.fromEntries(a), Object.fromEntries(b));
  assert.deepEqual(coPartitionedAssignment([], TOPICS).size, 0);
});

test('the kafkajs assigner encodes the pure assignment for each member', async () => {
  const cluster = { findTopicPartitionMetadata: (topic: string) => (TOPICS[topic as keyof typeof TOPICS] ?? []).map((partitionId) => ({ partitionId })) };
  const assigner = coPartitionedAssigner({ cluster, groupId: 'g', logger: {} } as never);
  const members = ['m2', 'm1'].map((memberId) => ({ memberId, memberMetadata: assigner.protocol({ topics: Object.keys(TOPICS) }).metadata }));
  const out = await assigner.assign({ members, topics: Object.keys(TOPICS) });
  const decoded = Object.fromEntries(out.map((o) => [o.memberId, AssignerProtocol.MemberAssignment.decode(o.memberAssignment)!.assignment]));
  assert.deepEqual(decoded, Object.fromEntries(coPartitionedAssignment(['m1', 'm2'], TOPICS)));
  assert.deepEqual(decoded.m1, { scores: [0, 2, 4], commands: [0, 2, 4], receipts: [0, 2, 4] });
  assert.deepEqual(AssignerProtocol.MemberMetadata.decode(members[0]!.memberMetadata)!.topics, Object.keys(TOPICS));
});

test('vehiclePartition is stable, in range and spreads vehicles', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const p = vehiclePartition(`car-${i}`, 6);
    assert.ok(Number.isInteger(p) && p >= 0 && p < 6);
    assert.equal(vehiclePartition(`car-${i}`, 6), p);
    seen.add(p);
  }
  assert.equal(seen.size, 6);
});

test('config: defaults, and errors name the variable', () => {
  const cfg = readIncidentsConfig({});
  assert.equal(cfg.healthPort, 9106);
  assert.equal(cfg.groupId, 'pitwall-incidents');
  assert.equal(cfg.transactionalIdPrefix, 'pitwall-incidents');
  assert.equal(cfg.clearAfterWindows, 6);
  assert.equal(cfg.dlqTopic, 'maintenance.incidents.dlq');
  assert.equal(cfg.topics.scores, 'vehicle.scores');
  assert.ok(Object.isFrozen(cfg));
  assert.equal(readIncidentsConfig({ TOPIC_INCIDENTS: 'x.incidents' }).dlqTopic, 'x.incidents.dlq');
  const bad: [Record<string, string>, string][] = [
    [{ INCIDENTS_CLEAR_AFTER_WINDOWS: '0' }, 'INCIDENTS_CLEAR_AFTER_WINDOWS'],
    [{ INCIDENTS_CLEAR_AFTER_WINDOWS: 'six' }, 'INCIDENTS_CLEAR_AFTER_WINDOWS'],
    [{ HEALTH_PORT: '70000' }, 'HEALTH_PORT'],
    [{ INCIDENTS_SESSION_TIMEOUT_MS: '100' }, 'INCIDENTS_SESSION_TIMEOUT_MS'],
    [{ TOPIC_PARTITIONS: '0' }, 'TOPIC_PARTITIONS'],
  ];
  for (const [env, variable] of bad) {
    assert.throws(
      () => readIncidentsConfig(env),
      (err: unknown) => err instanceof ConfigError && err.variable === variable && err.message.includes(variable),
      variable,
    );
  }
  assert.throws(
    () => readIncidentsConfig({ INCIDENTS_CLEAR_AFTER_WINDOWS: '-1', HEALTH_PORT: 'x' }),
    (err: unknown) => err instanceof ConfigError && err.message.includes('INCIDENTS_CLEAR_AFTER_WINDOWS') && err.message.includes('HEALTH_PORT'),
  );
});
