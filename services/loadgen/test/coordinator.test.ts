import { test } from 'node:test';
import assert from 'node:assert/strict';
import { untilStill } from '../src/coordinator.js';

/** A topic end that grows by one on each of the first `growFor` reads, then stays. */
function topicEnd(start: number, growFor: number) {
  let reads = 0;
  return {
    read: async (): Promise<bigint> => BigInt(start + Math.min(reads++, growFor)),
    reads: () => reads,
  };
}

test('untilStill: waits the short quiet period once the topic holds enough', async () => {
  const end = topicEnd(100, 5);
  assert.equal(await untilStill(end.read, { enough: 105n, quietMs: 20, stalledMs: 60_000, maxMs: 30_000, pollMs: 2 }), true);
  assert.ok(end.reads() >= 6, 'read until the value stopped changing');
});

test('untilStill: below enough it waits the stalled period, not the quiet one', async () => {
  const end = topicEnd(100, 5);
  const t0 = Date.now();
  assert.equal(await untilStill(end.read, { enough: 200n, quietMs: 10, stalledMs: 300, maxMs: 30_000, pollMs: 2 }), true);
  assert.ok(Date.now() - t0 >= 300, `returned after ${Date.now() - t0} ms, before the stalled period`);
});

test('untilStill: false when the topic never settles within maxMs', async () => {
  let n = 0n;
  assert.equal(await untilStill(async () => n++, { enough: 0n, quietMs: 50, stalledMs: 50, maxMs: 200, pollMs: 2 }), false);
});
