import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSlots, safeNext } from '../src/auth.js';
import { HttpError } from '../src/http.js';

test('safeNext: only a local path, never back to sign-in', () => {
  const cases: [unknown, string][] = [
    ['/vehicles/car-1?x=1', '/vehicles/car-1?x=1'],
    ['/', '/'],
    ['//evil.example/x', '/'],
    ['/\\evil.example', '/'],
    ['https://evil.example/', '/'],
    ['/a b', '/'],
    ['/login?next=/x', '/'],
    ['', '/'],
    [undefined, '/'],
    [5, '/'],
  ];
  for (const [next, expected] of cases) assert.equal(safeNext(next), expected, String(next));
});

test('createSlots: at most `concurrency` at once, a bounded queue, then 503 busy', async () => {
  const slot = createSlots(1, 1);
  const order: string[] = [];
  let release!: () => void;
  const first = slot(async () => {
    order.push('first');
    await new Promise<void>((r) => (release = r));
  });
  const second = slot(async () => void order.push('second'));
  await assert.rejects(
    slot(async () => void order.push('third')),
    (err: unknown) => err instanceof HttpError && err.status === 503 && err.code === 'busy',
  );
  assert.deepEqual(order, ['first'], 'the second waits for the first');
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first', 'second']);
  // A failed call frees its slot too.
  await assert.rejects(
    slot(() => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await slot(async () => 'free'), 'free');
});
