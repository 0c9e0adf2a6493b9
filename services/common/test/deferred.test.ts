import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deferred } from '../src/deferred.js';

test('deferred settles its promise from outside, once', async () => {
  const a = deferred<number>();
  a.resolve(7);
  a.resolve(8);
  assert.equal(await a.promise, 7);
  const b = deferred();
  b.reject(new Error('gone'));
  await assert.rejects(b.promise, /gone/);
});
