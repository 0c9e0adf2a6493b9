/**
 * Windowing's exactly-once guarantee on the real broker. The same telemetry log (out of order within
 * the grace period, with duplicates) is windowed twice: once uninterrupted, once with kill -9 of the
 * windowing process at arbitrary moments, restarts, and a second instance joining the group. A
 * read_committed reader must see exactly the same feature records from both runs: none lost, none
 * doubled, identical values — and the same as a plain batch computation over the events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { computeFeatures, createAvroCodec, defaultSchemasDir, featureFields, loadSchemaFile, SENSORS, windowDef, windowStartsFor, type TelemetryRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, kafkaClientConfig, runId, type ServiceProcess, startService, waitReady } from './support/stack.js';

const PARTITIONS = 3;
const VEHICLES = 48;
const SECONDS = 240;
const DEF = windowDef(10_000, 10_000, 2_000);

interface Event {
  vehicle: string;
  partition: number;
  ts: number;
  values: number[];
}

/** A deterministic telemetry log: per vehicle 1 Hz, locally shuffled within 1.5 s, some repeats. */
function makeLog(t0: number): Event[] {
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const perPartition: Event[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let s = 0; s < SECONDS; s++) {
    for (let v = 0; v < VEHICLES; v++) {
      const e: Event = {
        vehicle: `w-${v}`,
        partition: v % PARTITIONS,
        ts: t0 + s * 1000 + v * 7,
        values: SENSORS.map((x, i) => (x.kind === 'int' ? 200 + ((s * 7 + v + i) % 50) : Math.round((Math.sin(s / 9 + v + i) * 50 + rnd() * 10) * 1000) / 1000)),
      };
      perPartition[e.partition]!.push(e);
      if (rnd() < 0.03) perPartition[e.partition]!.push({ ...e }); // QoS 1 redelivery
    }
  }
  // Out of order within the grace period: swap neighbours whose event times differ by < 1.5 s.
  for (const list of perPartition) {
    for (let i = 1; i < list.length; i++) {
      if (rnd() < 0.3 && Math.abs(list[i]!.ts - list[i - 1]!.ts) < 1500) [list[i], list[i - 1]] = [list[i - 1]!, list[i]!];
    }
  }
  // A sentinel per partition, far ahead, closes every real window.
  perPartition.forEach((list, p) => list.push({ vehicle: `sentinel-${p}`, partition: p, ts: t0 + (SECONDS + 60) * 1000, values: SENSORS.map(() => 1) }));
  return perPartition.flat();
}

function batchFeatures(log: Event[]): Map<string, Record<string, unknown>> {
  const groups = new Map<string, { vehicle: string; start: number; events: Map<number, number[]> }>();
  for (const e of log) {
    if (e.vehicle.startsWith('sentinel')) continue;
    for (const start of windowStartsFor(DEF, e.ts)) {
      const k = `${e.vehicle}|${start}`;
      const g = groups.get(k) ?? { vehicle: e.vehicle, start, events: new Map() };
      g.events.set(e.ts, e.values);
      groups.set(k, g);
    }
  }
  const out = new Map<string, Record<string, unknown>>();
  for (const [k, g] of groups) {
    const f = computeFeatures([...g.events].map(([ts, values]) => ({ ts, values })));
    out.set(k, { vehicle_id: g.vehicle, window_start: g.start, window_end: g.start + DEF.sizeMs, event_count: g.events.size, ...featureFields(f) });
  }
  return out;
}

test('kill -9, restarts and a rebalance yield exactly the records of an uninterrupted run', { timeout: 300_000 }, async (t) => {
  const id = runId();
  const input = `e2e.${id}.eos.telemetry`;
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [input, `e2e.${id}.eos.features.a`, `e2e.${id}.eos.features.b`].map((topic) => ({ topic, numPartitions: PARTITIONS })),
    waitForLeaders: true,
  });
  await admin.disconnect();
  const store = adminSchemaStore();
  const telemetry = await createAvroCodec<TelemetryRecord>(store, `${input}-value`, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1));

  const t0 = Math.floor(Date.now() / 10_000) * 10_000 - 3_600_000;
  const log = makeLog(t0);
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < log.length; i += 2000) {
    await producer.send({
      topic: input,
      acks: -1,
      messages: log.slice(i, i + 2000).map((e) => {
        const rec: TelemetryRecord = { vehicle_id: e.vehicle, ts: e.ts, out_of_range: [], received_at: e.ts };
        SENSORS.forEach((s, j) => (rec[s.name] = e.values[j]!));
        return { key: e.vehicle, partition: e.partition, value: telemetry.encode(rec) };
      }),
    });
  }
  await producer.disconnect();
  const expected = batchFeatures(log);
  t.diagnostic(`input: ${log.length} events, expected ${expected.size} windows`);

  const envFor = (run: string): Record<string, string> => ({
    TOPIC_TELEMETRY: input,
    TOPIC_FEATURES: `e2e.${id}.eos.features.${run}`,
    TOPIC_TELEMETRY_DLQ: `e2e.${id}.eos.dlq.${run}`,
    TOPIC_TELEMETRY_LATE: `e2e.${id}.eos.late.${run}`,
    WINDOWING_GROUP_ID: `e2e.${id}.eos.${run}`,
    WINDOWING_TRANSACTIONAL_ID_PREFIX: `e2e.${id}.eos.${run}`,
    WINDOW_SIZE_MS: '10000',
    WINDOW_GRACE_MS: '2000',
    // Small fetches: many small transactions, so kills land mid-stream.
    WINDOWING_FETCH_MAX_BYTES: '1024',
  });

  /** Collects a features topic read_committed, as plain objects (deepEqual compares prototypes). */
  const features = async (topic: string) => {
    const codec = await createAvroCodec<Record<string, unknown>>(store, `${topic}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
    const reader = await collect(kafka, { topic, decode: async (v: Buffer) => ({ ...(await codec.decode(v)) }), readUncommitted: false });
    return {
      records: reader.records,
      reached: (n: number) => reader.waitFor(n, 150_000, `${n} records`, 20),
      async complete(quietMs: number) {
        await reader.waitFor((rs) => rs.length >= expected.size && reader.quietFor() > quietMs, 150_000, `all ${expected.size} windows`);
        await reader.stop();
        return reader.values();
      },
    };
  };

  // Run A: uninterrupted.
  const outA = await features(envFor('a').TOPIC_FEATURES!);
  const a = await startService('windowing', envFor('a'), `eos-${id}-a`);
  await waitReady([a]);
  const recordsA = await outA.complete(3000);
  assert.equal(await a.stop(), 0);

  // Run B: kill -9 mid-stream, restart, a second instance joins, kill -9 again.
  const outB = await features(envFor('b').TOPIC_FEATURES!);
  const running: ServiceProcess[] = [];
  const start = async (tag: string): Promise<ServiceProcess> => {
    const s = await startService('windowing', envFor('b'), `eos-${id}-b-${tag}`);
    running.push(s);
    return s;
  };
  let b1 = await start('1');
  await outB.reached(Math.floor(expected.size * 0.15));
  await b1.kill();
  t.diagnostic(`killed instance 1 (SIGKILL) after ${outB.records.length} committed records`);
  [b1] = await Promise.all([start('2'), start('3')]);
  await outB.reached(Math.floor(expected.size * 0.4));
  await b1.kill();
  t.diagnostic(`killed the first instance again (SIGKILL) after ${outB.records.length} committed records; the second takes over`);
  assert.ok(outB.records.length < expected.size, 'the second kill landed mid-stream');
  const recordsB = await outB.complete(8000);
  for (const s of running) await s.stop();

  const key = (r: Record<string, unknown>): string => `${r.vehicle_id}|${r.window_start}`;
  const index = (records: Record<string, unknown>[], name: string): Map<string, Record<string, unknown>> => {
    const m = new Map<string, Record<string, unknown>>();
    for (const r of records) {
      if (String(r.vehicle_id).startsWith('sentinel')) continue;
      assert.ok(!m.has(key(r)), `${name}: duplicate record ${key(r)}`);
      m.set(key(r), r);
    }
    return m;
  };
  const byA = index(recordsA, 'uninterrupted run');
  const byB = index(recordsB, 'interrupted run');
  t.diagnostic(`uninterrupted: ${byA.size} records, interrupted: ${byB.size} records, expected ${expected.size}`);
  assert.deepEqual([...byA.keys()].sort(), [...expected.keys()].sort(), 'uninterrupted run = batch computation (windows)');
  for (const [k, r] of expected) assert.deepEqual(byA.get(k), r, `uninterrupted run = batch computation for ${k}`);
  assert.deepEqual([...byB.keys()].sort(), [...byA.keys()].sort(), 'same windows after kill -9 and rebalance');
  for (const [k, r] of byA) assert.deepEqual(byB.get(k), r, `identical values for ${k}`);
});
