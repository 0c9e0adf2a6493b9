import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPassword, createRevocations, newSession, originAllowed, parseCookies, signSession, verifySession, type Session } from '../src/session.js';

const SECRET = 'test-secret-0123456789';
const NOW = 1_700_000_000_000;
const session: Session = { user: 'alice', sid: 'sid-1', iat: NOW, exp: NOW + 60_000 };

test('a signed session verifies with the same secret until it expires', () => {
  const token = signSession(session, SECRET);
  assert.deepEqual(verifySession(token, SECRET, NOW), session);
  assert.deepEqual(verifySession(token, SECRET, NOW + 59_999), session);
  assert.equal(verifySession(token, SECRET, NOW + 60_000), null, 'expired');
  assert.equal(verifySession(token, 'another-secret-0123', NOW), null, 'other secret');
});

test('tampered or malformed tokens are refused', () => {
  const token = signSession(session, SECRET);
  const [payload, mac] = token.split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify({ u: 'mallory', sid: 'x', iat: NOW, exp: NOW + 1e9 })).toString('base64url');
  const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
  for (const bad of [undefined, '', 'abc', `${payload}.`, `.${mac}`, `${forged}.${mac}`, `${payload}.${flipped}`, `${payload}.${mac}.x`, `${payload}x.${mac}`]) {
    assert.equal(verifySession(bad, SECRET, NOW), null, String(bad));
  }
  // A correctly signed payload that is not a session.
  const odd = Buffer.from(JSON.stringify({ user: 'alice' })).toString('base64url');
  const oddToken = signSession(session, SECRET).replace(payload, odd);
  assert.equal(verifySession(oddToken, SECRET, NOW), null);
});

test('newSession: unique ids, expiry from ttl', () => {
  const a = newSession('bob', NOW, 1000);
  const b = newSession('bob', NOW, 1000);
  assert.notEqual(a.sid, b.sid);
  assert.equal(a.exp, NOW + 1000);
});

test('checkPassword', () => {
  const users = new Map([
    ['alice', 'pw'],
    ['bob', 'p:w ord'],
  ]);
  const cases: [string, string, boolean][] = [
    ['alice', 'pw', true],
    ['alice', 'PW', false],
    ['alice', 'pw ', false],
    ['alice', '', false],
    ['bob', 'p:w ord', true],
    ['carol', 'pw', false],
    ['', '', false],
  ];
  for (const [name, pw, ok] of cases) assert.equal(checkPassword(users, name, pw), ok, `${name}/${pw}`);
});

test('originAllowed: only this host, over http(s)', () => {
  const cases: [string | undefined, string | undefined, boolean][] = [
    ['http://127.0.0.1:8080', '127.0.0.1:8080', true],
    ['https://console.example', 'console.example', true],
    ['http://CONSOLE.example', 'console.example', true],
    ['http://127.0.0.1:8081', '127.0.0.1:8080', false],
    ['http://evil.example', '127.0.0.1:8080', false],
    ['null', '127.0.0.1:8080', false],
    [undefined, '127.0.0.1:8080', false],
    ['http://127.0.0.1:8080', undefined, false],
    ['file://127.0.0.1:8080', '127.0.0.1:8080', false],
    ['not a url', '127.0.0.1:8080', false],
  ];
  for (const [origin, host, ok] of cases) assert.equal(originAllowed(origin, host), ok, `${origin} vs ${host}`);
});

test('parseCookies', () => {
  assert.deepEqual(parseCookies('a=1; pitwall_session=x.y; b=%20c'), { a: '1', pitwall_session: 'x.y', b: ' c' });
  assert.deepEqual(parseCookies(undefined), {});
  assert.deepEqual(parseCookies('junk; =x; c=%E0'), { c: '%E0' });
});

test('revoked sessions stay revoked until they expire, then are forgotten', () => {
  const r = createRevocations();
  const other = { ...session, sid: 'sid-2' };
  r.revoke(session);
  assert.equal(r.isRevoked(session, NOW), true);
  assert.equal(r.isRevoked(other, NOW), false);
  assert.equal(r.isRevoked(session, session.exp), false);
});
