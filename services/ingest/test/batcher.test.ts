import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBatcher } from '../src/batcher.js';

test('items added during an in-flight send go out together in the next send', async () => {
  const sends: number[][] = [];
  const acked: number[] = [];
  let release!: () => void;
  let first = true;
  const b = createBatcher<number>({
    maxBatch: 100,
    lingerMs: 1,
    async send(items) {
      sends.push([...items]);
      if (first) {
        first = false;
        await new Promise<void>((r) => (release = r));
      }
    },
    onSent: (items) => acked.push(...items),
    onError: () => assert.fail('no errors expected'),
  });
  b.add(1);
  await new Promise((r) => setTimeout(r, 10));
  for (let i = 2; i <= 5; i++) b.add(i);
  assert.deepEqual(acked, [], 'nothing is acknowledged before Kafka acknowledges');
  release();
  await b.flush();
  assert.deepEqual(sends, [[1], [2, 3, 4, 5]]);
  assert.deepEqual(acked, [1, 2, 3, 4, 5]);
});

test('a failed send is retried with the same items and acks only after success', async () => {
  let calls = 0;
  const acked: string[] = [];
  const errors: number[] = [];
  const b = createBatcher<string>({
    maxBatch: 10,
    lingerMs: 0,
    backoffMs: () => 1,
    async send(items) {
      calls++;
      assert.deepEqual(items, ['a', 'b']);
      if (calls < 3) throw new Error('broker unavailable');
    },
    onSent: (items) => acked.push(...items),
    onError: (_e, attempt) => errors.push(attempt),
  });
  b.add('a');
  b.add('b');
  await b.flush();
  assert.equal(calls, 3);
  assert.deepEqual(errors, [0, 1]);
  assert.deepEqual(acked, ['a', 'b']);
});

test('batches never exceed maxBatch', async () => {
  const sizes: number[] = [];
  const b = createBatcher<number>({ maxBatch: 3, lingerMs: 50, send: async (i) => void sizes.push(i.length), onSent: () => {}, onError: () => {} });
  for (let i = 0; i < 8; i++) b.add(i);
  await b.flush();
  assert.ok(sizes.every((s) => s <= 3), `sizes ${sizes}`);
  assert.equal(sizes.reduce((a, x) => a + x, 0), 8);
});
