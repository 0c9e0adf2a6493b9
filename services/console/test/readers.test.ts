import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCounters, silentLogger, type AvroCodec, type IncidentRecord } from '@pitwall/common';
import { incident } from '@pitwall/common/testing';
import { METRICS } from '../src/metrics.js';
import { createIncidentHandler } from '../src/readers/incidents.js';
import { createRevocationHandler } from '../src/readers/sessions.js';
import type { RevocationRecord } from '../src/session.js';
import { createIncidentStore } from '../src/state.js';

// Records as JSON stand in for Avro: the handler only calls decode.
const codec = {
  decode: async (b: Buffer) => JSON.parse(b.toString()) as IncidentRecord,
} as unknown as AvroCodec<IncidentRecord>;
const message = (key: string, value: unknown, offset = '0') => ({
  key: Buffer.from(key),
  value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  offset,
});

test('incident records: newer revisions broadcast, stale ones ignored, tombstones remove, garbage counted', async () => {
  const incidents = createIncidentStore();
  const sent: [string, unknown][] = [];
  const changed: string[] = [];
  const counters = createCounters([METRICS.incidentsRead, METRICS.undecodable]);
  const onBatch = createIncidentHandler({ codec, incidents, counters, log: silentLogger, live: { broadcast: (e, d) => void sent.push([e, d]), vehicleChanged: (v) => void changed.push(v) } });
  const v1 = incident({ revision: 1 });
  const v2 = incident({ revision: 2, status: 'ACKNOWLEDGED' });
  await onBatch({ messages: [message('inc-1', v1), message('inc-1', v2), message('inc-1', v1), message('inc-x', 'not json', '3'), message('inc-1', null), message('inc-2', null)] as never });
  assert.deepEqual(
    sent.map(([e]) => e),
    ['incident', 'incident', 'removed'],
  );
  assert.deepEqual(sent[2]![1], { incident_id: 'inc-1', vehicle_id: v1.vehicle_id });
  assert.deepEqual(changed, [v1.vehicle_id, v1.vehicle_id, v1.vehicle_id]);
  assert.equal(incidents.size(), 0);
  const stats = counters.snapshot();
  assert.equal(stats[METRICS.incidentsRead], 6);
  assert.equal(stats[`${METRICS.undecodable}{reason="incident"}`], 1);
});

test('revocations: applied as read; unreadable ones skipped, tombstones ignored', () => {
  const applied: RevocationRecord[] = [];
  const warned: unknown[] = [];
  const log = { ...silentLogger, warn: (_m: string, f?: Record<string, unknown>) => void warned.push(f) };
  const r: RevocationRecord = { type: 'user', user: 'vic', before: 5, at: 5, by: 'ada' };
  createRevocationHandler((x) => void applied.push(x), log)({ messages: [message('user:vic', r, '1'), message('x', '{"type":"nope"}', '2'), message('y', null, '3')] as never });
  assert.deepEqual(applied, [r]);
  assert.deepEqual(warned, [{ offset: '2' }]);
});
