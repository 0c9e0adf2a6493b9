import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRevocations, newSession, parseCookies, parseRevocation, revocationKey, signSession, verifySession, type RevocationRecord, type Session } from '../src/session.js';

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

test('newSession: unique random ids, expiry from ttl', () => {
  const a = newSession('bob', NOW, 1000);
  const b = newSession('bob', NOW, 1000);
  assert.notEqual(a.sid, b.sid);
  assert.match(a.sid, /^[\w-]{22}$/, '16 random bytes');
  // The id is inside the signed cookie.
  assert.equal(verifySession(signSession(a, SECRET), SECRET, NOW)?.sid, a.sid);
  assert.equal(a.exp, NOW + 1000);
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

test('revocations from the sessions topic: one session, or every session of a user up to a time', () => {
  const r = createRevocations(60_000);
  const records: RevocationRecord[] = [
    { type: 'session', sid: 'sid-1', user: 'alice', exp: NOW + 60_000, at: NOW, by: 'alice' },
    { type: 'user', user: 'bob', before: NOW + 10, at: NOW + 10, by: 'admin' },
  ];
  for (const rec of records) {
    const back = parseRevocation(Buffer.from(JSON.stringify(rec)));
    assert.deepEqual(back, rec);
    r.apply(back);
  }
  assert.deepEqual(records.map(revocationKey), ['sid-1', 'user:bob']);
  assert.equal(r.isRevoked(session, NOW), true);
  assert.equal(r.isRevoked({ ...session, sid: 'sid-9' }, NOW), false);
  assert.equal(r.isRevoked({ user: 'bob', sid: 'b1', iat: NOW + 10, exp: NOW + 60_000 }, NOW + 20), true, 'issued at the revocation time');
  assert.equal(r.isRevoked({ user: 'bob', sid: 'b2', iat: NOW + 11, exp: NOW + 60_000 }, NOW + 20), false, 'a sign-in after it');
  for (const bad of [null, 'junk', '{}', '{"type":"session","user":"a","at":1}', '{"type":"user","user":"a","at":1}', '{"type":"x","user":"a","at":1,"before":1}']) {
    assert.equal(parseRevocation(bad), null, String(bad));
  }
});
