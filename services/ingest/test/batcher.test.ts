import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '@pitwall/common/testing';
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
  await eventually('the first send to start', () => sends.length === 1);
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
  assert.ok(
    sizes.every((s) => s <= 3),
    `sizes ${sizes}`,
  );
  assert.equal(
    sizes.reduce((a, x) => a + x, 0),
    8,
  );
});

test('batches are bounded by bytes too; an item over the bound goes alone', async () => {
  const sends: number[][] = [];
  const b = createBatcher<number>({
    maxBatch: 100,
    maxBytes: () => 1000,
    sizeOf: (n) => n,
    lingerMs: 1,
    send: async (items) => void sends.push([...items]),
    onSent: () => {},
    onError: () => assert.fail('no errors expected'),
  });
  for (const n of [300, 300, 300, 300, 5000, 200, 900, 100]) b.add(n);
  await b.flush();
  assert.deepEqual(sends.flat(), [300, 300, 300, 300, 5000, 200, 900, 100], 'order kept');
  for (const s of sends) assert.ok(s.length === 1 || s.reduce((a, x) => a + x, 0) <= 1000, `batch ${s}`);
  assert.deepEqual(sends, [[300, 300, 300], [300], [5000], [200], [900, 100]]);
});

test('close() flushes what it can and returns true', async () => {
  const acked: number[] = [];
  const b = createBatcher<number>({ maxBatch: 2, lingerMs: 50, send: async () => {}, onSent: (i) => acked.push(...i), onError: () => {} });
  for (let i = 0; i < 5; i++) b.add(i);
  assert.equal(await b.close(1000), true);
  assert.deepEqual(acked, [0, 1, 2, 3, 4]);
  b.add(9);
  await new Promise((r) => setTimeout(r, 70));
  assert.deepEqual(acked, [0, 1, 2, 3, 4], 'nothing is taken after close');
});

for (const [name, send] of [
  ['a send that always fails', async () => Promise.reject(new Error('MESSAGE_TOO_LARGE'))],
  ['a send that never returns', () => new Promise<void>(() => {})],
] as const) {
  test(`close() gives up after its timeout on ${name}: nothing is acknowledged, nothing more sent`, async () => {
    let sends = 0;
    const acked: string[] = [];
    const b = createBatcher<string>({
      maxBatch: 10,
      lingerMs: 0,
      backoffMs: () => 10_000,
      send: () => {
        sends++;
        return send();
      },
      onSent: (items) => acked.push(...items),
      onError: () => {},
    });
    b.add('a');
    b.add('b');
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    assert.equal(await b.close(300), false);
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2000, `close took ${took} ms`);
    assert.equal(b.pending(), 2, 'the items are still unacknowledged');
    const before = sends;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sends, before, 'no retry after close');
    assert.deepEqual(acked, []);
  });
}
