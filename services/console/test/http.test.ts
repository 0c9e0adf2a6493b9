/**
 * The HTTP layer's access rules, in process and without Kafka: the routes exercised here never
 * touch it (the Kafka dependency is an empty object and would throw if they did). Revocations and
 * audit records go to an in-memory writeRecord instead of the producer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka } from 'kafkajs';
import { silentLogger } from '@pitwall/common';
import type { AuditRecord } from '../src/audit.js';
import { createConsole, type ConsoleSettings } from '../src/console.js';
import { parseAllowedOrigins } from '../src/origins.js';
import { makeUserEntry, parseUsers, type Users } from '../src/passwords.js';
import { NO_TRUSTED_PROXIES, parseTrustedProxies } from '../src/proxy.js';
import type { RevocationRecord } from '../src/session.js';

const FAST = { N: 2 ** 14, r: 8, p: 1 };
const PASSWORDS = { alice: 'wonderland-42', vic: 'viewer-only-7', ada: 'admin-lovelace' };
let users: Users;

interface App {
  base: string;
  host: string;
  records: { topic: string; key: string; value: unknown }[];
  failWrites: { on: boolean };
  close(): Promise<void>;
}

async function startApp(over: Partial<ConsoleSettings> = {}): Promise<App> {
  const records: App['records'] = [];
  const failWrites = { on: false };
  let handler: http.RequestListener = () => {};
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const base = `http://${host}`;
  const app = createConsole({
    kafka: {} as Kafka,
    codecs: {} as never,
    log: silentLogger,
    writeRecord: async (topic, key, value) => {
      if (failWrites.on) throw new Error('broker down');
      records.push({ topic, key, value: JSON.parse(JSON.stringify(value)) });
    },
    config: {
      service: 'console',
      port: 0,
      users,
      sessionSecret: 'unit-test-secret-0123',
      sessionTtlMs: 60_000,
      cookieSecure: false,
      allowedOrigins: parseAllowedOrigins([base]),
      groupIdPrefix: 'unit',
      partitions: 1,
      scoresLookbackMs: 0,
      topics: { incidents: 'i', scores: 's', incidentCommands: 'c', telemetry: 't' },
      consoleTopics: { sessions: 'sessions', audit: 'audit' },
      telemetry: { beforeMs: 1, afterMs: 1, maxScan: 100, maxPoints: 10 },
      ...over,
    },
  });
  handler = app.handler;
  return { base, host, records, failWrites, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const signIn = async (app: App, user: string, password: string, headers: Record<string, string> = { origin: app.base }): Promise<Response> =>
  fetch(`${app.base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ user, password, next: '/vehicles/car-1' }).toString(),
  });
const cookieOf = (res: Response): string => (res.headers.get('set-cookie') ?? '').split(';')[0]!;
const post = (app: App, path: string, cookie: string, body: unknown = {}, headers: Record<string, string> = { origin: app.base }): Promise<Response> =>
  fetch(app.base + path, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const last = <T>(list: T[], pred: (x: T) => boolean): T | undefined => list.filter(pred).at(-1);
const audits = (app: App): AuditRecord[] => app.records.filter((r) => r.topic === 'audit').map((r) => r.value as AuditRecord);

before(async () => {
  users = parseUsers(
    [await makeUserEntry('alice', 'operator', PASSWORDS.alice, FAST), await makeUserEntry('vic', 'viewer', PASSWORDS.vic, FAST), await makeUserEntry('ada', 'admin', PASSWORDS.ada, FAST)].join(','),
  );
});

describe('console HTTP, directly reached (no trusted proxy)', () => {
  let app: App;
  before(async () => (app = await startApp()));
  after(() => app.close());

  test('without a session: 401 JSON on the API and on writes, redirect to sign-in for pages', async () => {
    const { base } = app;
    for (const path of ['/api/incidents', '/api/me', '/api/stream', '/api/fleet', '/api/vehicles/x/telemetry?from=1&to=2', '/api/drift', '/api/vehicles/car-1/drift']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 401, path);
      assert.equal(((await res.json()) as Record<string, unknown>).error, 'unauthenticated');
    }
    const res = await post(app, '/api/incidents/inc-1/ack', '');
    assert.equal(res.status, 401);
    const page = await fetch(`${base}/vehicles/car-1`, { redirect: 'manual' });
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), '/login?next=%2Fvehicles%2Fcar-1');
    // A forged cookie is no session.
    const forged = await fetch(`${base}/api/me`, { headers: { cookie: 'pitwall_session=eyJ1IjoiYWxpY2UifQ.AAAA' } });
    assert.equal(forged.status, 401);
  });

  test('drift: fleet and vehicle drift for a signed-in viewer; empty without records, a malformed vehicle id is a 400', async () => {
    const cookie = cookieOf(await signIn(app, 'vic', PASSWORDS.vic));
    const fleet = await fetch(`${app.base}/api/drift`, { headers: { cookie } });
    assert.equal(fleet.status, 200);
    assert.deepEqual(await fleet.json(), { models: [], readings: { moderate: 0.1, significant: 0.25 } });
    const car = await fetch(`${app.base}/api/vehicles/car-1/drift`, { headers: { cookie } });
    assert.deepEqual(((await car.json()) as Record<string, unknown>).drift, null);
    const bad = await fetch(`${app.base}/api/vehicles/${encodeURIComponent('<b>')}/drift`, { headers: { cookie } });
    assert.equal(bad.status, 400);
  });

  test('sign-in: wrong password refused, right one gives an HttpOnly SameSite=Strict cookie and the role', async () => {
    const bad = await signIn(app, 'alice', 'nope');
    assert.equal(bad.status, 303);
    assert.match(bad.headers.get('location')!, /^\/login\?error=bad_credentials/);
    assert.equal(bad.headers.get('set-cookie'), null);
    const good = await signIn(app, 'alice', PASSWORDS.alice);
    assert.equal(good.status, 303);
    assert.equal(good.headers.get('location'), '/vehicles/car-1');
    const setCookie = good.headers.get('set-cookie')!;
    assert.match(setCookie, /^pitwall_session=[\w-]+\.[\w-]+;/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP from the browser itself');
    const me = await fetch(`${app.base}/api/me`, { headers: { cookie: cookieOf(good) } });
    assert.equal(me.status, 200);
    const body = (await me.json()) as Record<string, unknown>;
    assert.deepEqual({ ...body, expires_at: typeof body.expires_at }, { user: 'alice', role: 'operator', can: { act: true, revoke_others: false }, expires_at: 'number' });
  });

  test('X-Forwarded-* from an untrusted peer change nothing: no Secure, no other client address', async () => {
    const res = await signIn(app, 'vic', PASSWORDS.vic, { origin: app.base, 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.9' });
    assert.doesNotMatch(res.headers.get('set-cookie')!, /Secure/);
    const rec = last(audits(app), (a) => a.user === 'vic' && a.action === 'sign-in')!;
    assert.equal(rec.client.address, '127.0.0.1');
  });

  test('sign-in itself checks the Origin (or Referer) against CONSOLE_ALLOWED_ORIGINS', async () => {
    for (const headers of [
      { origin: 'http://evil.example' },
      {},
      { origin: 'null' },
      { referer: 'http://evil.example/login' },
      { origin: `http://${app.host.replace('127.0.0.1', 'localhost')}` },
    ] as Record<string, string>[]) {
      const res = await signIn(app, 'alice', PASSWORDS.alice, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal(((await res.json()) as Record<string, unknown>).error, 'bad_origin');
      assert.equal(res.headers.get('set-cookie'), null);
    }
    const viaReferer = await signIn(app, 'alice', PASSWORDS.alice, { referer: `${app.base}/login?next=/` });
    assert.equal(viaReferer.status, 303, 'a same-origin Referer stands in for a missing Origin');
  });

  test('writes: the Origin must be configured; a Host header naming the attacker does not help', async () => {
    const cookie = cookieOf(await signIn(app, 'alice', PASSWORDS.alice));
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'http://evil.example', host: 'evil.example' }, { referer: 'http://evil.example/' }, {}] as Record<string, string>[]) {
      const res = await post(app, '/api/incidents/inc-1/ack', cookie, { note: 'x' }, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal(((await res.json()) as Record<string, unknown>).error, 'bad_origin');
    }
    // Same origin: past the CSRF check, refused because the incident is unknown.
    const ok = await post(app, '/api/incidents/inc-1/ack', cookie, { note: 'x' });
    assert.equal(ok.status, 404);
    assert.equal(((await ok.json()) as Record<string, unknown>).error, 'not_found');
    const badBody = await fetch(`${app.base}/api/incidents/inc-1/ack`, { method: 'POST', headers: { cookie, origin: app.base, 'content-type': 'application/json' }, body: '[1' });
    assert.equal(badBody.status, 400);
  });

  test('roles: a viewer may not acknowledge or resolve (403, audited); operator and admin pass the check', async () => {
    const viewer = cookieOf(await signIn(app, 'vic', PASSWORDS.vic));
    const me = (await (await fetch(`${app.base}/api/me`, { headers: { cookie: viewer } })).json()) as Record<string, unknown>;
    assert.deepEqual([me.role, me.can], ['viewer', { act: false, revoke_others: false }]);
    for (const action of ['ack', 'resolve']) {
      const res = await post(app, `/api/incidents/inc-1/${action}`, viewer, { note: 'x' });
      assert.equal(res.status, 403, action);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.error, 'forbidden');
      assert.match(body.message!, /viewer role may not/);
    }
    const refusal = last(audits(app), (a) => a.user === 'vic')!;
    assert.deepEqual([refusal.action, refusal.outcome, refusal.incident_id, refusal.role], ['resolve', 'forbidden', 'inc-1', 'viewer']);
    for (const [user, pw] of [
      ['alice', PASSWORDS.alice],
      ['ada', PASSWORDS.ada],
    ] as const) {
      const cookie = cookieOf(await signIn(app, user, pw));
      assert.equal((await post(app, '/api/incidents/inc-1/ack', cookie)).status, 404, `${user}: past the role check`);
    }
  });

  test('sign-out revokes the session, writes the revocation (key: session id) and an audit record', async () => {
    const cookie = cookieOf(await signIn(app, 'alice', PASSWORDS.alice));
    const out = await fetch(`${app.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: app.base } });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie')!, /Max-Age=0/);
    assert.equal((await fetch(`${app.base}/api/me`, { headers: { cookie } })).status, 401);
    const rev = last(app.records, (r) => r.topic === 'sessions')!;
    const value = rev.value as RevocationRecord & { type: 'session' };
    assert.equal(value.type, 'session');
    assert.equal(rev.key, value.sid);
    assert.equal(value.user, 'alice');
    const signOut = last(audits(app), (a) => a.action === 'sign-out')!;
    assert.deepEqual([signOut.user, signOut.session, signOut.outcome], ['alice', value.sid, 'ok']);
  });

  test("revoking a user's sessions: admins for anyone, others only themselves", async () => {
    const viewer = cookieOf(await signIn(app, 'vic', PASSWORDS.vic));
    const operator = cookieOf(await signIn(app, 'alice', PASSWORDS.alice));
    const admin = cookieOf(await signIn(app, 'ada', PASSWORDS.ada));
    const denied = await post(app, '/api/sessions/revoke', operator, { user: 'vic' });
    assert.equal(denied.status, 403);
    assert.equal((await fetch(`${app.base}/api/me`, { headers: { cookie: viewer } })).status, 200);
    assert.equal((await post(app, '/api/sessions/revoke', admin, { user: 'nobody' })).status, 404);
    const ok = await post(app, '/api/sessions/revoke', admin, { user: 'vic' });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${app.base}/api/me`, { headers: { cookie: viewer } })).status, 401, 'every session of vic');
    assert.equal((await fetch(`${app.base}/api/me`, { headers: { cookie: admin } })).status, 200);
    const rev = last(app.records, (r) => r.topic === 'sessions')!;
    assert.equal(rev.key, 'user:vic');
    assert.deepEqual([(rev.value as { type: string }).type, (rev.value as { by: string }).by], ['user', 'ada']);
    const rec = last(audits(app), (a) => a.action === 'revoke-sessions')!;
    assert.deepEqual([rec.user, rec.target_user, rec.outcome], ['ada', 'vic', 'ok']);
    // vic signs in again afterwards; alice signs herself out everywhere.
    assert.equal((await signIn(app, 'vic', PASSWORDS.vic)).status, 303);
    const self = await post(app, '/api/sessions/revoke', operator, {});
    assert.equal(self.status, 200);
    assert.match(self.headers.get('set-cookie')!, /Max-Age=0/);
    assert.equal((await fetch(`${app.base}/api/me`, { headers: { cookie: operator } })).status, 401);
  });

  test('audit: sign-ins (both outcomes) with who, when and from where; no record, no session', async () => {
    const start = Date.now();
    await signIn(app, 'ada', 'wrong', { origin: app.base, 'user-agent': 'unit-test-agent/1' });
    await signIn(app, 'ada', PASSWORDS.ada, { origin: app.base, 'user-agent': 'unit-test-agent/1' });
    const [failed, ok] = audits(app)
      .filter((a) => a.user === 'ada' && a.action === 'sign-in')
      .slice(-2);
    assert.deepEqual([failed!.outcome, failed!.role, failed!.session], ['bad-credentials', null, null]);
    assert.deepEqual([ok!.outcome, ok!.role, ok!.client], ['ok', 'admin', { address: '127.0.0.1', user_agent: 'unit-test-agent/1' }]);
    assert.ok(ok!.at >= start && typeof ok!.session === 'string' && typeof ok!.console === 'string');
    assert.deepEqual(
      app.records
        .filter((r) => r.topic === 'audit')
        .slice(-2)
        .map((r) => r.key),
      ['ada', 'ada'],
      'keyed by user',
    );
    app.failWrites.on = true;
    try {
      const res = await signIn(app, 'ada', PASSWORDS.ada);
      assert.equal(res.status, 303);
      assert.match(res.headers.get('location')!, /error=unavailable/);
      assert.equal(res.headers.get('set-cookie'), null, 'a sign-in that cannot be audited gets no session');
    } finally {
      app.failWrites.on = false;
    }
  });

  test('open redirects are not possible through ?next', async () => {
    const res = await fetch(`${app.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: app.base },
      body: new URLSearchParams({ user: 'alice', password: PASSWORDS.alice, next: '//evil.example/x' }).toString(),
    });
    assert.equal(res.headers.get('location'), '/');
  });

  test('probes need no session', async () => {
    assert.equal((await fetch(`${app.base}/healthz`)).status, 200);
    assert.equal((await fetch(`${app.base}/readyz`)).status, 503, 'not started');
  });
});

describe('console HTTP behind a trusted proxy', () => {
  let app: App;
  before(async () => (app = await startApp({ trustedProxies: parseTrustedProxies(['127.0.0.1']), signInLimits: { windowMs: 60_000, perAddressAndUser: 3, perAddress: 6, maxKeys: 100 } })));
  after(() => app.close());

  test('the cookie is Secure when the proxy says the browser used HTTPS', async () => {
    const https = await signIn(app, 'alice', PASSWORDS.alice, { origin: app.base, 'x-forwarded-proto': 'https' });
    assert.match(https.headers.get('set-cookie')!, /; Secure/);
    const plain = await signIn(app, 'alice', PASSWORDS.alice, { origin: app.base, 'x-forwarded-proto': 'http' });
    assert.doesNotMatch(plain.headers.get('set-cookie')!, /Secure/);
  });

  test('rate limiting by the real client: an attacker locks out only itself; the right password from elsewhere works', async () => {
    const attacker = { origin: app.base, 'x-forwarded-for': '203.0.113.66', accept: 'application/json' };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await signIn(app, 'alice', `guess-${i}`, attacker)).status);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const limited = await signIn(app, 'alice', PASSWORDS.alice, attacker);
    assert.equal(limited.status, 429, 'even the right password, from the limited address');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    // A spoofed X-Forwarded-For left of the proxy's entry does not get the attacker a new address.
    assert.equal((await signIn(app, 'alice', 'guess', { ...attacker, 'x-forwarded-for': '198.51.100.7, 203.0.113.66' })).status, 429);
    const alice = await signIn(app, 'alice', PASSWORDS.alice, { origin: app.base, 'x-forwarded-for': '198.51.100.7', accept: 'application/json' });
    assert.equal(alice.status, 200, 'alice from her own address');
    // Spraying other names from the attacker's address hits the per-address limit.
    const spray: number[] = [];
    for (const user of ['bob', 'carol', 'dave', 'erin']) spray.push((await signIn(app, user, 'x', attacker)).status);
    assert.deepEqual(spray, [401, 401, 401, 429]);
    assert.equal((await signIn(app, 'vic', PASSWORDS.vic, { origin: app.base, 'x-forwarded-for': '198.51.100.8', accept: 'application/json' })).status, 200);
    const limitedAudit = audits(app).filter((a) => a.outcome === 'rate-limited');
    assert.ok(limitedAudit.length >= 1 && limitedAudit.length <= 3, `rate-limited refusals are audited once per key and window (${limitedAudit.length})`);
    assert.equal(limitedAudit[0]!.client.address, '203.0.113.66');
  });
});

describe('console HTTP with CONSOLE_COOKIE_SECURE', () => {
  test('the cookie is always Secure', async () => {
    const app = await startApp({ cookieSecure: true, trustedProxies: NO_TRUSTED_PROXIES });
    try {
      const res = await signIn(app, 'alice', PASSWORDS.alice);
      assert.match(res.headers.get('set-cookie')!, /; Secure/);
    } finally {
      await app.close();
    }
  });
});
