import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSignInLimiter } from '../src/rate-limit.js';

const limits = { windowMs: 60_000, perAddressAndUser: 3, perAddress: 5, maxKeys: 100 };

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test("an attacker's failures never lock out the same user at another address", () => {
  const c = clock();
  const l = createSignInLimiter(limits, c.now);
  for (let i = 0; i < 20; i++) {
    if (l.check('203.0.113.66', 'alice').allowed) l.failed('203.0.113.66', 'alice');
  }
  const attacker = l.check('203.0.113.66', 'alice');
  assert.equal(attacker.allowed, false);
  assert.deepEqual(l.check('198.51.100.7', 'alice'), { allowed: true }, 'alice from her own address');
  assert.deepEqual(l.check('198.51.100.8', 'bob'), { allowed: true });
});

test('per (address, user): three failures refuse that pair; the address may still try another user', () => {
  const c = clock();
  const l = createSignInLimiter(limits, c.now);
  for (let i = 0; i < 3; i++) {
    assert.equal(l.check('a', 'alice').allowed, true);
    l.failed('a', 'alice');
  }
  const refused = l.check('a', 'alice');
  assert.ok(!refused.allowed);
  assert.equal(refused.scope, 'address-user');
  assert.equal(refused.first, true, 'the first refusal is worth an audit record');
  assert.equal((l.check('a', 'alice') as { first: boolean }).first, false, 'later ones are not');
  assert.equal(l.check('a', 'bob').allowed, true);
  // The window slides: a minute after the first failure one more try is allowed.
  c.advance(60_000);
  assert.equal(l.check('a', 'alice').allowed, true);
});

test('per address: guessing across many user names from one address is capped', () => {
  const c = clock();
  const l = createSignInLimiter(limits, c.now);
  for (const user of ['u1', 'u2', 'u3', 'u4', 'u5']) {
    assert.equal(l.check('a', user).allowed, true, user);
    l.failed('a', user);
  }
  const refused = l.check('a', 'u6');
  assert.ok(!refused.allowed);
  assert.equal(refused.scope, 'address');
  assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 60_000);
  assert.equal(l.check('b', 'u6').allowed, true, 'another address is not affected');
});

test('success resets the (address, user) count only; memory stays bounded', () => {
  const c = clock();
  const l = createSignInLimiter(limits, c.now);
  l.failed('a', 'alice');
  l.failed('a', 'alice');
  l.succeeded('a', 'alice');
  l.failed('a', 'alice');
  l.failed('a', 'alice');
  assert.equal(l.check('a', 'alice').allowed, true, 'two failures since the success');
  l.failed('a', 'bob');
  assert.equal(l.check('a', 'carol').allowed, false, 'the address count (5) was not reset by the success');
  const big = createSignInLimiter({ ...limits, maxKeys: 50 }, c.now);
  for (let i = 0; i < 1000; i++) big.failed(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
  assert.ok(big.size() <= 50);
});
