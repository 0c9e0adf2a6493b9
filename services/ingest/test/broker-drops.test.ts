import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDropTracker } from '../src/handlers/broker-drops.js';

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
