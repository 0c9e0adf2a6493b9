import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BROKER_DROPS_TOPIC, BROKER_UPTIME_TOPIC, createBrokerDropsHandler, createDropTracker } from '../src/handlers/broker-drops.js';

test('the broker drop counter: increases, a restart, and payloads that are not counts', () => {
  const t = createDropTracker();
  const cases: [string, { total: number; increase: number } | undefined][] = [
    ['0', { total: 0, increase: 0 }],
    ['0', { total: 0, increase: 0 }],
    ['12', { total: 12, increase: 12 }],
    [' 15\n', { total: 15, increase: 3 }],
    ['abc', undefined],
    ['-1', undefined],
    ['1e9', undefined],
    ['15', { total: 15, increase: 0 }],
    ['4', { total: 4, increase: 4 }], // restarted broker
  ];
  for (const [payload, expected] of cases) assert.deepEqual(t.observe(Buffer.from(payload)), expected, `payload ${JSON.stringify(payload)}`);
});

test('the first observation reports what the broker dropped before ingest was there', () => {
  assert.deepEqual(createDropTracker().observe(Buffer.from('7')), { total: 7, increase: 7 });
});

test('the $SYS handler: 0 once the broker is seen, then its count; an error per increase; other topics pass', () => {
  const values: number[] = [];
  const errors: unknown[] = [];
  const handle = createBrokerDropsHandler({ gauge: () => ({ set: (v: number) => void values.push(v) }), log: { error: (_m, f) => void errors.push(f) } });
  assert.equal(handle('vehicles/car-1/telemetry', Buffer.from('{}')), false);
  assert.equal(handle(BROKER_UPTIME_TOPIC, Buffer.from('10 seconds')), true);
  assert.equal(handle(BROKER_UPTIME_TOPIC, Buffer.from('20 seconds')), true);
  assert.equal(handle(BROKER_DROPS_TOPIC, Buffer.from('garbage')), true);
  assert.equal(handle(BROKER_DROPS_TOPIC, Buffer.from('5')), true);
  assert.deepEqual(values, [0, 5]);
  assert.deepEqual(errors, [{ dropped: 5, droppedSinceBrokerStart: 5, fix: 'raise max_queued_messages / max_queued_bytes, or add ingest capacity (docs/guarantees.md, Overload)' }]);
});
