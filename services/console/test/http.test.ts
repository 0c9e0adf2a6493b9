/**
 * The HTTP layer's access rules, in process and without Kafka: the routes exercised here never
 * touch it (the Kafka dependency is an empty object and would throw if they did).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka } from 'kafkajs';
import { silentLogger } from '@pitwall/common';
import { createConsole } from '../src/console.js';

let server: http.Server;
let base: string;
let host: string;

before(async () => {
  const app = createConsole({
    kafka: {} as Kafka,
    codecs: {} as never,
    log: silentLogger,
    config: {
      service: 'console',
      port: 0,
      users: new Map([['alice', 'wonderland']]),
      sessionSecret: 'unit-test-secret-0123',
      sessionTtlMs: 60_000,
      cookieSecure: false,
      groupIdPrefix: 'unit',
      partitions: 1,
      scoresLookbackMs: 0,
      topics: { incidents: 'i', scores: 's', incidentCommands: 'c', telemetry: 't' },
      telemetry: { beforeMs: 1, afterMs: 1, maxScan: 100, maxPoints: 10 },
    },
  });
  server = http.createServer(app.handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = `http://${host}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const signIn = async (user: string, password: string, origin: string | null = base): Promise<Response> =>
  fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) },
    body: new URLSearchParams({ user, password, next: '/vehicles/car-1' }).toString(),
  });
const cookieOf = (res: Response): string => (res.headers.get('set-cookie') ?? '').split(';')[0]!;

test('without a session: 401 JSON on the API and on writes, redirect to sign-in for pages', async () => {
  for (const path of ['/api/incidents', '/api/me', '/api/stream', '/api/fleet', '/api/vehicles/x/telemetry?from=1&to=2']) {
    const res = await fetch(base + path);
    assert.equal(res.status, 401, path);
    assert.equal(((await res.json()) as Record<string, unknown>).error, 'unauthenticated');
  }
  const post = await fetch(`${base}/api/incidents/inc-1/ack`, { method: 'POST', headers: { origin: base, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(post.status, 401);
  const page = await fetch(`${base}/vehicles/car-1`, { redirect: 'manual' });
  assert.equal(page.status, 303);
  assert.equal(page.headers.get('location'), '/login?next=%2Fvehicles%2Fcar-1');
  // A forged cookie is no session.
  const forged = await fetch(`${base}/api/me`, { headers: { cookie: 'pitwall_session=eyJ1IjoiYWxpY2UifQ.AAAA' } });
  assert.equal(forged.status, 401);
});

test('sign-in: wrong password refused, right one gives an HttpOnly SameSite=Strict cookie', async () => {
  const bad = await signIn('alice', 'nope');
  assert.equal(bad.status, 303);
  assert.match(bad.headers.get('location')!, /^\/login\?error=bad_credentials/);
  assert.equal(bad.headers.get('set-cookie'), null);
  const good = await signIn('alice', 'wonderland');
  assert.equal(good.status, 303);
  assert.equal(good.headers.get('location'), '/vehicles/car-1');
  const setCookie = good.headers.get('set-cookie')!;
  assert.match(setCookie, /^pitwall_session=[\w-]+\.[\w-]+;/);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  const me = await fetch(`${base}/api/me`, { headers: { cookie: cookieOf(good) } });
  assert.equal(me.status, 200);
  assert.equal(((await me.json()) as Record<string, unknown>).user, 'alice');
});

test('sign-in itself checks the Origin', async () => {
  for (const origin of ['http://evil.example', null]) {
    const res = await signIn('alice', 'wonderland', origin);
    assert.equal(res.status, 403, String(origin));
    assert.equal(((await res.json()) as Record<string, unknown>).error, 'bad_origin');
    assert.equal(res.headers.get('set-cookie'), null);
  }
});

test('with a session: writes from another origin (or none) get 403; same origin passes the check', async () => {
  const cookie = cookieOf(await signIn('alice', 'wonderland'));
  for (const origin of ['http://evil.example', `http://${host.replace('127.0.0.1', 'localhost')}`, undefined]) {
    const res = await fetch(`${base}/api/incidents/inc-1/ack`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', ...(origin ? { origin } : {}) },
      body: JSON.stringify({ note: 'x' }),
    });
    assert.equal(res.status, 403, String(origin));
    assert.equal(((await res.json()) as Record<string, unknown>).error, 'bad_origin');
  }
  // Same origin: past the CSRF check, refused because the incident is unknown.
  const ok = await fetch(`${base}/api/incidents/inc-1/ack`, { method: 'POST', headers: { cookie, origin: base, 'content-type': 'application/json' }, body: '{"note":"x"}' });
  assert.equal(ok.status, 404);
  assert.equal(((await ok.json()) as Record<string, unknown>).error, 'not_found');
  const badBody = await fetch(`${base}/api/incidents/inc-1/ack`, { method: 'POST', headers: { cookie, origin: base, 'content-type': 'application/json' }, body: '[1' });
  assert.equal(badBody.status, 400);
});

test('sign-out revokes the session', async () => {
  const cookie = cookieOf(await signIn('alice', 'wonderland'));
  const out = await fetch(`${base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: base } });
  assert.equal(out.status, 303);
  assert.match(out.headers.get('set-cookie')!, /Max-Age=0/);
  assert.equal((await fetch(`${base}/api/me`, { headers: { cookie } })).status, 401);
});

test('open redirects are not possible through ?next', async () => {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: new URLSearchParams({ user: 'alice', password: 'wonderland', next: '//evil.example/x' }).toString(),
  });
  assert.equal(res.headers.get('location'), '/');
});

test('probes need no session', async () => {
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 503, 'not started');
});
