/**
 * The incidents service on the real broker and registry, as a process (its own main.ts):
 *  1. lifecycle of one vehicle's incident: 3 anomalous tire windows open exactly one incident, a
 *     re-scored duplicate window adds no revision, ACKNOWLEDGE, a car receipt, 6 normal windows
 *     clear it, the next anomalous window opens a new incident; undecodable input is dead-lettered.
 *  2. exactly-once: the same score log processed once uninterrupted and once with kill -9 of the
 *     service mid-stream (twice) gives the same incident records, revisions 1..n per incident
 *     without gaps or repeats, read read_committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import {
  createAvroCodec,
  defaultSchemasDir,
  DLQ_HEADER,
  ensureTopics,
  loadSchemaFile,
  type AvroCodec,
  type Contributor,
  type IncidentCommandRecord,
  type IncidentRecord,
  type ReceiptRecord,
  type ScoreRecord,
} from '@pitwall/common';
import { collect as collectTopic, TIRE_CONTRIBUTORS, windowScore, type Collector } from '@pitwall/common/testing';
import { adminSchemaStore, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor, waitReady } from './support/stack.js';

const PARTITIONS = 3;
const W = 10_000;
const T0 = Date.UTC(2026, 0, 1);
const SCHEMAS = defaultSchemasDir();

const kafka = new Kafka({ clientId: 'e2e-incidents', ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
const store = adminSchemaStore();

const c = (sensor: string, share: number): Contributor => ({ sensor, share, component: 'x', action: 'y' });
const AREAS: Record<string, readonly Contributor[]> = {
  tires: TIRE_CONTRIBUTORS,
  cooling: [c('coolant_temp', 0.6), c('intake_air_temp', 0.3)],
  battery: [c('battery_voltage', 0.5), c('current_draw', 0.4)],
};

/** Window i (10 s windows from T0) of a vehicle, scored; anomalous ones at `ratio` times the threshold (default 1.2). */
function scoreRecord(vehicle: string, i: number, anomalous: boolean, opts: { area?: string; ratio?: number } = {}): ScoreRecord {
  return windowScore(vehicle, i, { anomalous, contributors: AREAS[opts.area ?? 'tires']!, t0: T0, ...(opts.ratio === undefined ? {} : { ratio: opts.ratio }) });
}

interface Codecs {
  score: AvroCodec<ScoreRecord>;
  command: AvroCodec<IncidentCommandRecord>;
  receipt: AvroCodec<ReceiptRecord>;
  incident: AvroCodec<IncidentRecord>;
}

async function codecsFor(env: ReturnType<typeof isolatedEnv>): Promise<Codecs> {
  return {
    score: await createAvroCodec(store, `${env.TOPIC_SCORES}-value`, await loadSchemaFile(SCHEMAS, 'score', 1)),
    command: await createAvroCodec(store, `${env.TOPIC_INCIDENT_COMMANDS}-value`, await loadSchemaFile(SCHEMAS, 'incident-command', 1)),
    receipt: await createAvroCodec(store, `${env.TOPIC_RECEIPTS}-value`, await loadSchemaFile(SCHEMAS, 'receipt', 1)),
    incident: await createAvroCodec(store, `${env.TOPIC_INCIDENTS}-value`, await loadSchemaFile(SCHEMAS, 'incident', 1)),
  };
}

async function createTopics(env: ReturnType<typeof isolatedEnv>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(
      admin,
      [
        { topic: env.TOPIC_SCORES },
        { topic: env.TOPIC_INCIDENT_COMMANDS },
        { topic: env.TOPIC_RECEIPTS },
        { topic: env.TOPIC_INCIDENTS, configEntries: { 'cleanup.policy': 'compact' } },
        { topic: `${env.TOPIC_INCIDENTS}.dlq` },
      ],
      { partitions: PARTITIONS },
    );
  } finally {
    await admin.disconnect();
  }
}

/** Reads a topic read_committed from the beginning for as long as the test needs it. */
const collect = <T>(topic: string, decode: (value: Buffer) => T | Promise<T>) => collectTopic(kafka, { topic, decode, readUncommitted: false, maxWaitTimeInMs: 200 });

/** Fields that depend on when the service ran (wall clock), not on its inputs. */
function withoutWallClock(r: IncidentRecord): Record<string, unknown> {
  const { updated_at: _u, closed_at, acknowledged_at: _a, history, ...rest } = r;
  // Plain JSON: decoded records are instances of avsc's generated classes, one per codec.
  return JSON.parse(JSON.stringify({ ...rest, closed: closed_at !== null, history: history.map(({ at: _at, ...h }) => h) })) as Record<string, unknown>;
}

function assertRevisionsGapless(records: IncidentRecord[], what: string): Map<string, IncidentRecord[]> {
  const byId = new Map<string, IncidentRecord[]>();
  for (const r of records) byId.set(r.incident_id, [...(byId.get(r.incident_id) ?? []), r]);
  for (const [id, list] of byId) {
    assert.deepEqual(
      list.map((r) => r.revision),
      list.map((_, i) => i + 1),
      `${what}: revisions of ${id} are 1..n in order without gaps or repeats`,
    );
  }
  return byId;
}

test('incident lifecycle of one vehicle: open, duplicate, acknowledge, receipt, clear, new incident, dead letter', { timeout: 240_000 }, async (t) => {
  const id = runId();
  const env = { ...isolatedEnv(id), TOPIC_PARTITIONS: String(PARTITIONS), INCIDENTS_CLEAR_AFTER_WINDOWS: '6' };
  await createTopics(env);
  const codecs = await codecsFor(env);
  const out = await collect(env.TOPIC_INCIDENTS, (v) => codecs.incident.decode(v));
  const dlq = await collect(`${env.TOPIC_INCIDENTS}.dlq`, (v) => v.toString('utf8'));
  const producer = kafka.producer();
  await producer.connect();
  let svc: ServiceProcess | undefined;
  try {
    svc = await startService('incidents', env, `incidents-${id}`);
    await waitReady([svc]);
    const vehicle = `e2e-${id}-car`;
    const sendScores = (...records: ScoreRecord[]) => producer.send({ topic: env.TOPIC_SCORES, messages: records.map((r) => ({ key: r.vehicle_id, value: codecs.score.encode(r) })) });
    const mine = () => out.records.map((r) => r.value).filter((r) => r.vehicle_id === vehicle);
    const revisionReached = (incident: string | undefined, revision: number) =>
      out.waitFor(() => mine().find((r) => (incident === undefined || r.incident_id === incident) && r.revision === revision), 90_000, `revision ${revision} of incident ${incident ?? '(first)'}`);

    await sendScores(scoreRecord(vehicle, 0, true), scoreRecord(vehicle, 1, true), scoreRecord(vehicle, 2, true));
    const third = await revisionReached(undefined, 3);
    const incident = third.incident_id;
    assert.deepEqual(new Set(mine().map((r) => r.incident_id)).size, 1, 'exactly one incident for the three windows');
    assert.deepEqual(
      mine().map((r) => [r.revision, r.status, r.last_change, r.severity, r.area]),
      [
        [1, 'OPEN', 'OPENED', 'LOW', 'tires'],
        [2, 'OPEN', 'UPDATED', 'LOW', 'tires'],
        [3, 'OPEN', 'ESCALATED', 'MEDIUM', 'tires'],
      ],
    );
    assert.equal(third.anomalous_windows, 3);
    assert.equal(third.opened_at, T0);
    assert.equal(third.component, 'tires');

    // A re-scored duplicate of window 2, then window 3: only window 3 makes a revision.
    await sendScores(scoreRecord(vehicle, 2, true, { ratio: 3 }), scoreRecord(vehicle, 3, true));
    const fourth = await revisionReached(incident, 4);
    assert.equal(fourth.last_window_end, T0 + 4 * W);
    assert.equal(fourth.anomalous_windows, 4);
    assert.equal(fourth.severity, 'MEDIUM', 'the duplicate (ratio 3) was not applied');

    await producer.send({
      topic: env.TOPIC_INCIDENT_COMMANDS,
      messages: [
        {
          key: vehicle,
          value: codecs.command.encode({
            command_id: `${id}-ack`,
            incident_id: incident,
            vehicle_id: vehicle,
            action: 'ACKNOWLEDGE',
            operator: 'e2e-olga',
            note: 'tyre shop booked',
            issued_at: Date.now(),
          }),
        },
      ],
    });
    const acked = await revisionReached(incident, 5);
    assert.equal(acked.status, 'ACKNOWLEDGED');
    assert.equal(acked.acknowledged_by, 'e2e-olga');
    assert.equal(acked.history.at(-1)!.note, 'tyre shop booked');

    const ingestedAt = Date.now();
    await producer.send({
      topic: env.TOPIC_RECEIPTS,
      messages: [{ key: vehicle, value: codecs.receipt.encode({ vehicle_id: vehicle, incident_id: incident, revision: 3, received_at: ingestedAt - 5, ingested_at: ingestedAt }) }],
    });
    const delivered = await revisionReached(incident, 6);
    assert.equal(delivered.last_change, 'DELIVERED');
    assert.equal(delivered.delivered_at, ingestedAt);
    assert.equal(delivered.status, 'ACKNOWLEDGED');

    await sendScores(...[4, 5, 6, 7, 8, 9].map((i) => scoreRecord(vehicle, i, false)));
    const cleared = await revisionReached(incident, 12);
    assert.equal(cleared.status, 'CLEARED');
    assert.equal(cleared.last_change, 'CLEARED');
    assert.equal(cleared.consecutive_normal, 6);
    assert.ok(cleared.closed_at !== null);
    assert.deepEqual(
      mine()
        .filter((r) => r.incident_id === incident)
        .slice(6)
        .map((r) => [r.last_change, r.consecutive_normal]),
      [
        ['UPDATED', 1],
        ['UPDATED', 2],
        ['UPDATED', 3],
        ['UPDATED', 4],
        ['UPDATED', 5],
        ['CLEARED', 6],
      ],
    );

    await sendScores(scoreRecord(vehicle, 10, true, { ratio: 5 }));
    const reopened = await out.waitFor(() => mine().find((r) => r.incident_id !== incident), 90_000, 'a new incident');
    assert.equal(reopened.status, 'OPEN');
    assert.equal(reopened.last_change, 'OPENED');
    assert.equal(reopened.revision, 1);
    assert.equal(reopened.severity, 'CRITICAL');
    assert.equal(reopened.opened_at, T0 + 10 * W);

    await producer.send({ topic: env.TOPIC_SCORES, messages: [{ key: vehicle, value: Buffer.from('not avro') }] });
    const [dead] = await dlq.waitFor(1, 90_000, 'the dead letter');
    assert.equal(dead!.value, 'not avro');
    assert.equal(dead!.headers[DLQ_HEADER.reason], 'avro.framing');
    assert.equal(dead!.headers['pitwall.source.topic'], env.TOPIC_SCORES);

    const all = mine();
    assertRevisionsGapless(all, 'lifecycle');
    assert.equal(all.length, 13, 'no other records');
    t.diagnostic(`incident ${incident}: ${all.length} records; then ${reopened.incident_id}`);
    assert.equal(await svc.stop(), 0, 'graceful shutdown on SIGTERM');
  } finally {
    await svc?.kill();
    await producer.disconnect();
    await out.stop();
    await dlq.stop();
  }
});

/** A deterministic score log: per vehicle runs of anomalous windows in changing areas and normal gaps. */
function makeScoreLog(prefix: string, vehicles: number, windows: number): ScoreRecord[] {
  let seed = 4242;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const areas = Object.keys(AREAS);
  const log: ScoreRecord[] = [];
  for (let v = 0; v < vehicles; v++) {
    let anomalous = false;
    let area = areas[v % areas.length]!;
    for (let i = 0; i < windows; i++) {
      if (rnd() < 0.2) anomalous = !anomalous;
      if (rnd() < 0.1) area = areas[Math.floor(rnd() * areas.length)]!;
      log.push(scoreRecord(`${prefix}-v${v}`, i, anomalous, { area, ratio: 1 + rnd() * 4 }));
      if (rnd() < 0.05) log.push(scoreRecord(`${prefix}-v${v}`, i, anomalous, { area, ratio: 2 })); // re-scored duplicate
    }
  }
  // Interleave the vehicles window by window, keeping each vehicle's order.
  return log.sort((a, b) => a.window_start - b.window_start);
}

test('exactly once: kill -9 mid-stream gives the same incidents and revisions as an uninterrupted run', { timeout: 600_000 }, async (t) => {
  const id = runId();
  const log = makeScoreLog(`e2e-${id}`, 24, 60);
  const envFor = (run: string) => {
    const base = isolatedEnv(`${id}${run}`);
    return {
      ...base,
      TOPIC_PARTITIONS: String(PARTITIONS),
      INCIDENTS_CLEAR_AFTER_WINDOWS: '4',
      INCIDENTS_SESSION_TIMEOUT_MS: '8000',
      // Small fetches: many small transactions, so the kills land mid-stream.
      INCIDENTS_FETCH_MAX_BYTES: '1024',
    };
  };
  const producer = kafka.producer();
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const running: ServiceProcess[] = [];
  const readers: { stop(): Promise<void> }[] = [];

  /** Produces the whole log, then returns a reader of the incidents topic. */
  const prepare = async (env: ReturnType<typeof envFor>) => {
    await createTopics(env);
    const codecs = await codecsFor(env);
    for (let i = 0; i < log.length; i += 50) {
      await producer.send({ topic: env.TOPIC_SCORES, messages: log.slice(i, i + 50).map((r) => ({ key: r.vehicle_id, value: codecs.score.encode(r) })) });
    }
    const reader = await collect(env.TOPIC_INCIDENTS, (v) => codecs.incident.decode(v));
    readers.push(reader);
    return reader;
  };
  /** Every score consumed and committed by the service's group. */
  const consumedAll = async (env: ReturnType<typeof envFor>): Promise<boolean> => {
    const ends = await admin.fetchTopicOffsets(env.TOPIC_SCORES);
    const [committed] = await admin.fetchOffsets({ groupId: env.INCIDENTS_GROUP_ID, topics: [env.TOPIC_SCORES] });
    return ends.every((e) => committed?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
  };
  const settle = async (env: ReturnType<typeof envFor>, reader: Collector<IncidentRecord>) => {
    await waitFor('every score committed', () => consumedAll(env), 240_000, 500);
    // The reader catches up with what is committed: wait until it stops growing.
    let seen = -1;
    await reader.waitFor(
      (records) => {
        const now = records.length;
        const stable = now === seen;
        seen = now;
        return stable && now > 0;
      },
      60_000,
      'the reader to catch up',
      2000,
    );
    return reader.values();
  };

  try {
    // Run A: uninterrupted.
    const envA = envFor('a');
    const outA = await prepare(envA);
    const a = await startService('incidents', envA, `incidents-eos-${id}-a`);
    running.push(a);
    await waitReady([a]);
    const recordsA = await settle(envA, outA);
    assert.equal(await a.stop(), 0);

    // Run B: kill -9 mid-stream; restart as two instances (the co-partitioned assignment splits the
    // partitions, each rebuilds only its vehicles); kill -9 one of them, the other takes over.
    const envB = envFor('b');
    const outB = await prepare(envB);
    const start = async (tag: string): Promise<ServiceProcess> => {
      const s = await startService('incidents', envB, `incidents-eos-${id}-${tag}`);
      running.push(s);
      return s;
    };
    const reached = (share: number) => outB.waitFor(Math.ceil(recordsA.length * share), 240_000, `${Math.round(share * 100)}% of the records`, 20);
    const b1 = await start('b1');
    await reached(0.2);
    await b1.kill();
    t.diagnostic(`SIGKILL after ${outB.records.length} of ${recordsA.length} committed records`);
    assert.ok(outB.records.length < recordsA.length, 'the first kill landed mid-stream');
    const [b2, b3] = await Promise.all([start('b2'), start('b3')]);
    await reached(0.55);
    await b2.kill();
    t.diagnostic(`SIGKILL of one of two instances after ${outB.records.length} of ${recordsA.length} committed records`);
    assert.ok(outB.records.length < recordsA.length, 'the second kill landed mid-stream');
    const recordsB = await settle(envB, outB);
    assert.equal(await b3.stop(), 0);

    const byA = assertRevisionsGapless(recordsA, 'uninterrupted run');
    const byB = assertRevisionsGapless(recordsB, 'interrupted run');
    const kinds = new Set(recordsA.map((r) => r.last_change));
    t.diagnostic(`${byA.size} incidents, ${recordsA.length} records (changes: ${[...kinds].join(', ')}); interrupted run ${byB.size} incidents, ${recordsB.length} records`);
    for (const change of ['OPENED', 'UPDATED', 'ESCALATED', 'CLEARED'] as const) assert.ok(kinds.has(change), `the log exercises ${change}`);
    assert.deepEqual([...byB.keys()].sort(), [...byA.keys()].sort(), 'same incident ids');
    for (const [incident, list] of byA) {
      assert.deepEqual(byB.get(incident)!.map(withoutWallClock), list.map(withoutWallClock), `same revisions of ${incident}`);
    }
  } finally {
    for (const s of running) await s.kill();
    for (const r of readers) await r.stop();
    await producer.disconnect();
    await admin.disconnect();
  }
});
