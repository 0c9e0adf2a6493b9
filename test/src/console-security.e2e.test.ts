/**
 * The console's security on the real broker and registry: two replicas (their own main.js) that
 * share a session secret, one behind a "trusted proxy" (this test, from 127.0.0.1), one without.
 *  - roles: a viewer's acknowledge is refused with 403 and writes nothing; an operator's is written;
 *  - cross-origin (and Origin-less) POSTs are refused;
 *  - the cookie is Secure behind X-Forwarded-Proto: https from the trusted proxy, and only there;
 *  - rate limiting by the real client behind the proxy: an attacker locks out only its address;
 *  - a signed-out session, and an admin-revoked user, is refused by the other replica and by a
 *    restarted replica (revocations on the compacted sessions topic);
 *  - every action is on the audit topic: who, what, when, from where.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { createAvroCodec, defaultSchemasDir, ensureTopics, loadSchemaFile, type AvroCodec, type IncidentCommandRecord, type IncidentRecord } from '@pitwall/common';
import { incident as incidentFixture, readAll } from '@pitwall/common/testing';
import type { AuditRecord } from '@pitwall/console';
import { consoleUsers } from './support/console-users.js';
import { adminSchemaStore, freePort, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor } from './support/stack.js';

const id = runId();
const env = isolatedEnv(id);
const CAR = `e2e${id}-car-1`;
const INCIDENT = `inc-${id}-1`;
const T0 = Date.now() - 10 * 60_000;
const AGENT = `pitwall-e2e/${id}`;
const USERS = [
  { name: 'alice', role: 'operator', password: 'alice-operator-pw' },
  { name: 'vic', role: 'viewer', password: 'vic-viewer-pw' },
  { name: 'ada', role: 'admin', password: 'ada-admin-pw' },
] as const;
const PW = Object.fromEntries(USERS.map((u) => [u.name, u.password])) as Record<(typeof USERS)[number]['name'], string>;
const kafka = new Kafka({ clientId: `e2e-console-security-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
const store = adminSchemaStore();

/** The incident the operators act on, opened at T0. */
const incident = (): IncidentRecord => incidentFixture({ incident_id: INCIDENT, vehicle_id: CAR }, T0);

/** Every record of a topic up to its current end, with a throw-away group. */
const readTopic = <T>(topic: string, decode: (value: Buffer) => T | Promise<T>) => readAll(kafka, { topic, decode });

interface Replica {
  svc: ServiceProcess;
  base: string;
}

describe('console security on Kafka, two replicas', { timeout: 300_000 }, () => {
  const replicaEnv: Record<string, string> = { ...env, CONSOLE_SESSION_SECRET: `e2e-shared-secret-${id}`, TOPIC_PARTITIONS: '3' };
  let users = '';
  let a: Replica; // behind the "proxy": trusts 127.0.0.1
  let b: Replica; // reached directly: trusts nobody
  let commands: AvroCodec<IncidentCommandRecord>;
  const started: ServiceProcess[] = [];

  const startReplica = async (tag: string, extra: Record<string, string> = {}): Promise<Replica> => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const svc = await startService('console', { ...replicaEnv, CONSOLE_USERS: users, CONSOLE_PORT: String(port), ...extra }, `console-security-${id}-${tag}`);
    started.push(svc);
    await Promise.race([
      waitFor(`console ${tag} ready (log: ${svc.logFile})`, async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 90_000),
      svc.exited.then((code) => {
        throw new Error(`console ${tag} exited with ${code}; see ${svc.logFile}`);
      }),
    ]);
    return { svc, base };
  };

  const signIn = (r: Replica, user: string, password: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${r.base}/login`, {
      method: 'POST',
      headers: { origin: r.base, 'content-type': 'application/json', accept: 'application/json', 'user-agent': AGENT, ...headers },
      body: JSON.stringify({ user, password }),
    });
  const cookieFrom = async (r: Replica, user: keyof typeof PW, headers: Record<string, string> = {}): Promise<string> => {
    const res = await signIn(r, user, PW[user], headers);
    assert.equal(res.status, 200, `${user} signs in on ${r.base}`);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };
  const me = async (r: Replica, cookie: string): Promise<number> => (await fetch(`${r.base}/api/me`, { headers: { cookie } })).status;
  const post = (r: Replica, path: string, cookie: string, body: unknown, headers: Record<string, string> = { origin: r.base }): Promise<Response> =>
    fetch(r.base + path, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/json', 'user-agent': AGENT, ...headers }, body: JSON.stringify(body) });

  before(async () => {
    users = await consoleUsers(USERS);
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(
      admin,
      [{ topic: env.TOPIC_INCIDENTS, configEntries: { 'cleanup.policy': 'compact' } }, { topic: env.TOPIC_INCIDENT_COMMANDS }, { topic: env.TOPIC_SCORES }, { topic: env.TOPIC_TELEMETRY }],
      { partitions: 3 },
    );
    await admin.disconnect();
    const incidents = await createAvroCodec<IncidentRecord>(store, `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(defaultSchemasDir(), 'incident', 1));
    commands = await createAvroCodec(store, `${env.TOPIC_INCIDENT_COMMANDS}-value`, await loadSchemaFile(defaultSchemasDir(), 'incident-command', 1));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: env.TOPIC_INCIDENTS, messages: [{ key: INCIDENT, value: incidents.encode(incident()) }] });
    await producer.disconnect();
    [a, b] = await Promise.all([startReplica('a', { CONSOLE_TRUSTED_PROXIES: '127.0.0.1/32,::1' }), startReplica('b')]);
  });

  after(async () => {
    const codes = await Promise.all(started.map((s) => s.stop()));
    assert.deepEqual(
      codes,
      codes.map(() => 0),
      'every console shuts down cleanly on SIGTERM',
    );
  });

  test("a viewer's acknowledge is refused with 403; cross-origin POSTs are refused; an operator's acknowledge is written", async () => {
    const viewer = await cookieFrom(a, 'vic');
    const refused = await post(a, `/api/incidents/${INCIDENT}/ack`, viewer, { note: 'viewer tries' });
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { error: string }).error, 'forbidden');

    const operator = await cookieFrom(a, 'alice');
    for (const headers of [{ origin: 'http://evil.example' }, { referer: 'http://evil.example/page' }, {}, { origin: 'http://evil.example', host: 'evil.example' }] as Record<string, string>[]) {
      const res = await post(a, `/api/incidents/${INCIDENT}/ack`, operator, { note: 'csrf' }, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal(((await res.json()) as { error: string }).error, 'bad_origin');
    }
    const crossLogin = await signIn(a, 'alice', PW.alice, { origin: 'http://evil.example' });
    assert.equal(crossLogin.status, 403, 'a cross-origin sign-in too');

    const ok = await post(a, `/api/incidents/${INCIDENT}/ack`, operator, { note: 'On it.' });
    assert.equal(ok.status, 202);
    const { command_id } = (await ok.json()) as { command_id: string };
    const written = await readTopic(env.TOPIC_INCIDENT_COMMANDS, (v) => commands.decode(v));
    assert.deepEqual(
      written.map((c) => [c.value.command_id, c.value.operator, c.value.action]),
      [[command_id, 'alice', 'ACKNOWLEDGE']],
      'only the operator wrote a command',
    );
  });

  test('the cookie is Secure behind X-Forwarded-Proto: https from the trusted proxy, not otherwise', async () => {
    const secure = await signIn(a, 'alice', PW.alice, { 'x-forwarded-proto': 'https' });
    assert.match(secure.headers.get('set-cookie')!, /; Secure/);
    assert.doesNotMatch((await signIn(a, 'alice', PW.alice)).headers.get('set-cookie')!, /Secure/, 'plain HTTP');
    assert.doesNotMatch((await signIn(b, 'alice', PW.alice, { 'x-forwarded-proto': 'https' })).headers.get('set-cookie')!, /Secure/, 'the header from an untrusted peer');
  });

  test('behind the proxy an attacker locks out only its own address; the right password from another works', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.66' };
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await signIn(a, 'alice', `guess-${i}`, attacker)).status);
    assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
    assert.equal((await signIn(a, 'alice', PW.alice, attacker)).status, 429);
    assert.equal((await signIn(a, 'alice', PW.alice, { 'x-forwarded-for': '198.51.100.7' })).status, 200, 'alice from her address');
  });

  test('a signed-out session is refused by the other replica and by a restarted one; so is an admin-revoked user', async () => {
    const gone = await cookieFrom(a, 'alice');
    const kept = await cookieFrom(a, 'alice');
    const viewer = await cookieFrom(b, 'vic');
    assert.equal(await me(b, gone), 200, 'the shared secret carries sessions across replicas');
    const out = await fetch(`${a.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: gone, origin: a.base, 'user-agent': AGENT } });
    assert.equal(out.status, 303);
    assert.equal(await me(a, gone), 401, 'refused at once where it was signed out');
    await waitFor('the other replica to refuse the signed-out cookie', async () => ((await me(b, gone)) === 401 ? true : undefined), 15_000, 100);
    assert.equal(await me(b, kept), 200, 'another session of the same user is untouched');

    // An admin on B revokes every session of vic; A follows.
    const admin = await cookieFrom(b, 'ada');
    assert.equal((await post(b, '/api/sessions/revoke', viewer, { user: 'alice' })).status, 403, 'a viewer cannot revoke others');
    const revoke = await post(b, '/api/sessions/revoke', admin, { user: 'vic' });
    assert.equal(revoke.status, 200);
    await waitFor('replica A to refuse the revoked viewer', async () => ((await me(a, viewer)) === 401 ? true : undefined), 15_000, 100);

    // A restarted replica has read every revocation before it answers anything.
    const code = await b.svc.stop();
    assert.equal(code, 0);
    b = await startReplica('b-restarted');
    assert.equal(await me(b, gone), 401, 'the signed-out cookie, right after the restart');
    assert.equal(await me(b, viewer), 401, 'the revoked user, right after the restart');
    assert.equal(await me(b, kept), 200);
    assert.equal(await me(b, admin), 200);
  });

  test('every action is on the audit topic: who, what, when, from where', async () => {
    const audit = await readTopic<AuditRecord>(env.TOPIC_CONSOLE_AUDIT, (v) => JSON.parse(v.toString('utf8')) as AuditRecord);
    assert.ok(
      audit.every((r) => r.key === r.value.user),
      'keyed by user',
    );
    const find = (pred: (r: AuditRecord) => boolean, what: string): AuditRecord => {
      const r = audit.map((x) => x.value).find(pred);
      assert.ok(r, `an audit record for ${what}`);
      return r;
    };
    const signIn = find((r) => r.action === 'sign-in' && r.user === 'alice' && r.outcome === 'ok', 'a sign-in');
    assert.deepEqual(signIn.client, { address: '127.0.0.1', user_agent: AGENT });
    assert.ok(signIn.at > T0 && signIn.role === 'operator' && typeof signIn.session === 'string');
    find((r) => r.action === 'sign-in' && r.user === 'alice' && r.outcome === 'bad-credentials' && r.client.address === '203.0.113.66', 'a failed sign-in, from the client behind the proxy');
    find((r) => r.action === 'sign-in' && r.outcome === 'rate-limited' && r.client.address === '203.0.113.66', 'a rate-limited sign-in');
    find((r) => r.action === 'sign-in' && r.user === 'alice' && r.client.address === '198.51.100.7' && r.outcome === 'ok', 'the sign-in from behind the proxy');
    const ack = find((r) => r.action === 'acknowledge' && r.outcome === 'ok', 'the acknowledge');
    assert.deepEqual([ack.user, ack.role, ack.incident_id, ack.vehicle_id, ack.note, typeof ack.command_id], ['alice', 'operator', INCIDENT, CAR, 'On it.', 'string']);
    const forbidden = find((r) => r.action === 'acknowledge' && r.outcome === 'forbidden', 'the refused acknowledge');
    assert.deepEqual([forbidden.user, forbidden.role, forbidden.incident_id], ['vic', 'viewer', INCIDENT]);
    find((r) => r.action === 'sign-out' && r.user === 'alice' && r.client.user_agent === AGENT, 'the sign-out');
    const revoke = find((r) => r.action === 'revoke-sessions' && r.outcome === 'ok', 'the revocation');
    assert.deepEqual([revoke.user, revoke.target_user], ['ada', 'vic']);
    find((r) => r.action === 'revoke-sessions' && r.outcome === 'forbidden' && r.user === 'vic', 'the refused revocation');
    // Both replicas wrote to it.
    assert.ok(new Set(audit.map((r) => r.value.console)).size >= 2);
  });
});
