/**
 * The console as a process (its own main.ts) on the real broker and registry, over HTTP without a
 * browser. The test plays the incidents service: it writes IncidentRecords to an isolated
 * maintenance.incidents topic and reads what the console writes to the commands topic.
 *  - sign-in; /api/incidents holds what was on the topic before the start and what came after;
 *  - /api/stream sends a snapshot, then a live `incident` event for a new revision;
 *  - POST ack -> one IncidentCommandRecord keyed by vehicle_id with the signed-in operator;
 *    unauthenticated or cross-origin POSTs -> 401/403 and nothing written;
 *  - the vehicle's telemetry around the incident is read from its partition only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import {
  createAvroCodec,
  defaultSchemasDir,
  ensureTopics,
  keyPartition,
  loadSchemaFile,
  SENSORS,
  type AvroCodec,
  type IncidentCommandRecord,
  type IncidentRecord,
  type TelemetryRecord,
} from '@pitwall/common';
import { incident as incidentFixture, readAll } from '@pitwall/common/testing';
import { consoleUsers } from './support/console-users.js';
import { adminSchemaStore, freePort, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor } from './support/stack.js';

const id = runId();
const env = isolatedEnv(id);
const PARTITIONS = 3;
const CAR = `e2e${id}-car-1`;
const OTHER = `e2e${id}-car-2`;
const T0 = Date.now() - 10 * 60_000;
const SCHEMAS = defaultSchemasDir();
const kafka = new Kafka({ clientId: `e2e-console-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
const store = adminSchemaStore();

/** CAR's incident opened at T0; override what a test is about. */
const incident = (over: Partial<IncidentRecord>): IncidentRecord => incidentFixture({ incident_id: `inc-${id}-1`, vehicle_id: CAR, ...over }, T0);

function reading(vehicle: string, ts: number): TelemetryRecord {
  const r: TelemetryRecord = { vehicle_id: vehicle, ts, out_of_range: [], ignition_on: true, received_at: ts + 50 };
  const offset = vehicle === CAR ? 0 : 1000;
  SENSORS.forEach((s, i) => (r[s.name] = s.kind === 'int' ? offset + i : offset + i + (ts - T0) / 1000));
  return r;
}

describe('console over HTTP', { timeout: 240_000 }, () => {
  let consoleSvc: ServiceProcess | undefined;
  let base = '';
  let cookie = '';
  let incidents: AvroCodec<IncidentRecord>;
  let commands: AvroCodec<IncidentCommandRecord>;
  const producer = kafka.producer();

  before(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(
      admin,
      [{ topic: env.TOPIC_INCIDENTS, configEntries: { 'cleanup.policy': 'compact' } }, { topic: env.TOPIC_INCIDENT_COMMANDS }, { topic: env.TOPIC_SCORES }, { topic: env.TOPIC_TELEMETRY }],
      { partitions: PARTITIONS },
    );
    await admin.disconnect();
    incidents = await createAvroCodec(store, `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(SCHEMAS, 'incident', 1));
    commands = await createAvroCodec(store, `${env.TOPIC_INCIDENT_COMMANDS}-value`, await loadSchemaFile(SCHEMAS, 'incident-command', 1));
    const telemetry = await createAvroCodec<TelemetryRecord>(store, `${env.TOPIC_TELEMETRY}-value`, await loadSchemaFile(SCHEMAS, 'telemetry', 2));
    await producer.connect();
    // Before the console starts: it must find these by reading the topic from its beginning.
    await producer.send({ topic: env.TOPIC_INCIDENTS, messages: [{ key: `inc-${id}-1`, value: incidents.encode(incident({})) }] });
    // 10 minutes of 1 Hz telemetry for two cars; the chart range is first window -5 min .. +2 min.
    const messages = [];
    for (let t = T0 - 8 * 60_000; t < T0 + 4 * 60_000; t += 1000) {
      // Record timestamps as ingest would produce them in real time: just after the reading.
      for (const v of [CAR, OTHER]) messages.push({ key: v, value: telemetry.encode(reading(v, t)), timestamp: String(t + 50) });
    }
    await producer.send({ topic: env.TOPIC_TELEMETRY, messages });

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const users = await consoleUsers([
      { name: 'alice', role: 'operator', password: 'wonder-land' },
      { name: 'bob', role: 'viewer', password: 'builder' },
    ]);
    consoleSvc = await startService('console', { ...env, CONSOLE_PORT: String(port), CONSOLE_USERS: users, TOPIC_PARTITIONS: String(PARTITIONS) }, `console-${id}`);
    await Promise.race([
      waitFor(`console ready (log: ${consoleSvc.logFile})`, async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 90_000),
      consoleSvc.exited.then((code) => {
        throw new Error(`console exited with ${code}; see ${consoleSvc!.logFile}`);
      }),
    ]);
  });

  after(async () => {
    await producer.disconnect();
    const code = await consoleSvc?.stop();
    assert.equal(code, 0, 'the console shuts down cleanly on SIGTERM');
  });

  test('sign in, then the incidents from before and after the start', async () => {
    const refused = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { origin: base, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ user: 'alice', password: 'wrong' }),
    });
    assert.equal(refused.status, 401);
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { origin: base, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ user: 'alice', password: 'wonder-land' }),
    });
    assert.equal(res.status, 200);
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;

    const list = async (): Promise<IncidentRecord[]> => ((await (await fetch(`${base}/api/incidents`, { headers: { cookie } })).json()) as { incidents: IncidentRecord[] }).incidents;
    assert.deepEqual(
      (await list()).map((i) => [i.incident_id, i.revision]),
      [[`inc-${id}-1`, 1]],
    );

    await producer.send({
      topic: env.TOPIC_INCIDENTS,
      messages: [{ key: `inc-${id}-2`, value: incidents.encode(incident({ incident_id: `inc-${id}-2`, vehicle_id: OTHER, area: 'tires', severity: 'LOW', updated_at: T0 + 20_000 })) }],
    });
    const both = await waitFor(
      'the second incident in /api/incidents',
      async () => {
        const l = await list();
        return l.length === 2 ? l : undefined;
      },
      30_000,
    );
    assert.deepEqual(new Set(both.map((i) => i.incident_id)), new Set([`inc-${id}-1`, `inc-${id}-2`]));

    const fleet = (await (await fetch(`${base}/api/fleet`, { headers: { cookie } })).json()) as { vehicles: { vehicle_id: string; health: string }[] };
    assert.deepEqual(Object.fromEntries(fleet.vehicles.map((v) => [v.vehicle_id, v.health])), { [CAR]: 'critical', [OTHER]: 'attention' });
  });

  test('the stream sends a snapshot, then new revisions live', async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/api/stream`, { headers: { cookie }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const events: { event: string; id?: string; data: unknown }[] = [];
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString('utf8');
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const field = (n: string): string | undefined =>
            block
              .split('\n')
              .find((l) => l.startsWith(`${n}: `))
              ?.slice(n.length + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (field('event')) events.push({ event: field('event')!, id: field('id'), data: JSON.parse(data) });
        }
      }
    })().catch(() => {});
    try {
      const snap = await waitFor('a snapshot event', () => events.find((e) => e.event === 'snapshot'), 20_000);
      assert.equal((snap.data as { incidents: unknown[] }).incidents.length, 2);
      assert.equal((snap.data as { user: string }).user, 'alice');
      assert.ok(snap.id, 'the snapshot carries an id to resume from');
      await producer.send({
        topic: env.TOPIC_INCIDENTS,
        messages: [
          { key: `inc-${id}-2`, value: incidents.encode(incident({ incident_id: `inc-${id}-2`, vehicle_id: OTHER, area: 'tires', severity: 'MEDIUM', revision: 2, last_change: 'ESCALATED' })) },
        ],
      });
      const live = await waitFor('a live incident event', () => events.find((e) => e.event === 'incident' && (e.data as IncidentRecord).revision === 2), 30_000);
      assert.equal((live.data as IncidentRecord).severity, 'MEDIUM');

      // Reconnecting with Last-Event-ID replays what came after it instead of a new snapshot.
      const again = await fetch(`${base}/api/stream`, { headers: { cookie, 'last-event-id': snap.id } });
      const r2 = again.body!.getReader();
      let t2 = '';
      await waitFor(
        'the replayed event',
        async () => {
          const { value } = await r2.read();
          t2 += Buffer.from(value ?? new Uint8Array()).toString('utf8');
          return t2.includes('event: incident') ? true : undefined;
        },
        20_000,
      );
      assert.ok(!t2.includes('event: snapshot'), 'no snapshot when the missed events are known');
      await r2.cancel();
    } finally {
      ac.abort();
      await pump;
    }
  });

  test('acknowledge writes one command with the operator; unauthenticated and cross-origin writes nothing', async () => {
    const unauth = await fetch(`${base}/api/incidents/${encodeURIComponent(`inc-${id}-1`)}/ack`, {
      method: 'POST',
      headers: { origin: base, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'sneaky' }),
    });
    assert.equal(unauth.status, 401);
    const crossSite = await fetch(`${base}/api/incidents/${encodeURIComponent(`inc-${id}-1`)}/ack`, {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'csrf' }),
    });
    assert.equal(crossSite.status, 403);

    const res = await fetch(`${base}/api/incidents/${encodeURIComponent(`inc-${id}-1`)}/ack`, {
      method: 'POST',
      headers: { cookie, origin: base, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'Driver called, coming in tomorrow.' }),
    });
    assert.equal(res.status, 202);
    const { command_id } = (await res.json()) as { command_id: string };

    const written = await readAll(kafka, { topic: env.TOPIC_INCIDENT_COMMANDS, decode: commands });
    assert.equal(written.length, 1, 'only the authenticated same-origin POST wrote a command');
    const [cmd] = written;
    assert.equal(cmd!.key, CAR, 'keyed by vehicle_id');
    assert.deepEqual(
      { ...cmd!.value, issued_at: 0 },
      {
        command_id,
        incident_id: `inc-${id}-1`,
        vehicle_id: CAR,
        action: 'ACKNOWLEDGE',
        operator: 'alice',
        note: 'Driver called, coming in tomorrow.',
        issued_at: 0,
      },
    );
  });

  test("the vehicle's telemetry around the incident comes from its partition only", async () => {
    const res = await fetch(`${base}/api/vehicles/${encodeURIComponent(CAR)}/telemetry?incident=${encodeURIComponent(`inc-${id}-1`)}`, { headers: { cookie } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { partition: number; ts: number[]; sensors: Record<string, (number | null)[]>; truncated: string | null; from: number; to: number };
    assert.equal(body.partition, keyPartition(CAR, PARTITIONS));
    assert.equal(body.from, T0 - 5 * 60_000);
    assert.equal(body.to, T0 + 2 * 60_000);
    // 1 Hz over [from, to] inclusive.
    assert.equal(body.ts.length, 7 * 60 + 1);
    assert.equal(body.truncated, null);
    assert.ok(
      body.ts.every((t, i) => i === 0 || t > body.ts[i - 1]!),
      'sorted by event time',
    );
    assert.equal(body.sensors.coolant_temp![0], (body.ts[0]! - T0) / 1000, 'values of this car, not the other one');
    const other = await fetch(`${base}/api/vehicles/${encodeURIComponent(OTHER)}/telemetry?from=${T0}&to=${T0 + 60_000}`, { headers: { cookie } });
    assert.equal(((await other.json()) as { ts: number[] }).ts.length, 61);
  });
});
