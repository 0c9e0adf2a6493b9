/**
 * `npm run replay` against the real Kafka and registry: known feature records go to an isolated
 * topic; a time range and an offset range are replayed with the committed model. The listed alerts
 * must be exactly those scoreBatch/buildAlert give for the records inside the range (no more, no
 * fewer), two runs must print the same bytes, and the replay must leave no trace: no committed
 * offsets, no new topic, no new schema subject, nothing produced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import * as tf from '@tensorflow/tfjs';
import { createAvroCodec, defaultSchemasDir, FEATURE_NAMES, featureVector, loadSchemaFile, type AlertRecord } from '@pitwall/common';
import { buildAlert, loadModelDir, scoreBatch } from '@pitwall/model';
import { adminSchemaStore, INFRA, kafkaClientConfig, kafkaIdentityEnv, REPO, runId } from './support/stack.js';

const run = promisify(execFile);
const MODEL_DIR = path.join(REPO, 'models/pitwall-ae/1');

interface Produced {
  partition: number;
  offset: number;
  timestamp: number;
  record: Record<string, unknown> & { vehicle_id: string; window_start: number; window_end: number; event_count: number };
}

async function replay(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(REPO, 'services/model-lab/dist/bin/replay.js'), '--model-dir', MODEL_DIR, '--json', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', KAFKA_BROKERS: INFRA.kafka, SCHEMA_REGISTRY_URL: INFRA.registry, ...kafkaIdentityEnv('admin') },
    timeout: 150_000,
    maxBuffer: 32 * 1024 * 1024,
  });
}

async function subjects(): Promise<string[]> {
  const res = await fetch(`${INFRA.registry}/subjects`);
  assert.equal(res.status, 200);
  return (await res.json()) as string[];
}

test('replay lists exactly the alerts of the records in a time range and an offset range, and leaves no trace', { timeout: 300_000 }, async (t) => {
  const id = runId();
  const topic = `e2e.${id}.replay.features`;
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  // The records are stamped in the past (T0): with the broker's default retention (7 days, checked every
  // 5 minutes) their segments could be deleted mid-test, which replays then see as an empty range.
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }], waitForLeaders: true });

  tf.enableProdMode();
  await tf.setBackend('cpu');
  const { model, metadata: meta } = await loadModelDir(MODEL_DIR);
  t.after(() => model.dispose());

  // 8 vehicles x 15 windows. Every third window of a vehicle overheats (alerts), every seventh is
  // partial (too few events to be scored, even when it overheats); the rest sit at the training mean.
  const store = adminSchemaStore();
  const codec = await createAvroCodec<Record<string, unknown>>(store, `${topic}-value`, await loadSchemaFile(defaultSchemasDir(), 'features', 1));
  const T0 = Date.UTC(2026, 1, 1, 8);
  const VEHICLES = 8;
  const ROUNDS = 15;
  const produced: Produced[] = [];
  const nextOffset = [0, 0, 0];
  const messages: Array<{ key: string; partition: number; timestamp: string; value: Buffer }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let v = 0; v < VEHICLES; v++) {
      const vehicle = `rp-${id}-${v}`;
      const start = T0 + r * 10_000;
      const hot = (r + v) % 3 === 0;
      const record: Produced['record'] = { vehicle_id: vehicle, window_start: start, window_end: start + 10_000, event_count: (r * VEHICLES + v) % 7 === 3 ? 4 : 10 };
      FEATURE_NAMES.forEach((name, i) => (record[name] = meta.normalization.mean[i]! + (hot && name.startsWith('coolant_temp_') ? (20 + v) * meta.normalization.std[i]! : 0)));
      const partition = v % 3;
      // Record timestamps increase through the whole send, so each partition's are increasing too.
      const timestamp = T0 + (r * VEHICLES + v) * 1000;
      produced.push({ partition, offset: nextOffset[partition]!++, timestamp, record });
      messages.push({ key: vehicle, partition, timestamp: String(timestamp), value: codec.encode(record) });
    }
  }
  // Transactional, like windowing writes features: each partition ends with a commit marker that
  // takes an offset. Then an aborted transaction of alerting windows a read_committed replay must skip.
  const producer = kafka.producer({ transactionalId: `e2e.${id}.replay`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const committed = await producer.transaction();
  await committed.send({ topic, acks: -1, messages });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({
    topic,
    acks: -1,
    messages: produced
      .filter((p) => p.partition === 0)
      .slice(0, 5)
      .map((p) => ({ key: p.record.vehicle_id, partition: 0, timestamp: String(p.timestamp), value: messages[produced.indexOf(p)]!.value })),
  });
  await aborted.abort();
  await producer.disconnect();

  const topicsBefore = await admin.listTopics();
  const groupsBefore = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
  const offsetsBefore = await admin.fetchTopicOffsets(topic);
  const subjectsBefore = await subjects();

  const expectedFor = (inRange: (p: Produced) => boolean): Array<AlertRecord & { source: { partition: number; offset: string } }> => {
    const records = produced.filter(inRange).sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    const scoredRecords = records.filter((p) => p.record.event_count >= 8);
    const scored = scoreBatch(
      model,
      meta,
      scoredRecords.map((p) => featureVector(p.record, meta.features)),
    );
    return scored.flatMap((s, i) => {
      const p = scoredRecords[i]!;
      return s.score > meta.threshold ? [{ ...buildAlert(p.record, s, meta, p.record.window_end), source: { partition: p.partition, offset: String(p.offset) } }] : [];
    });
  };
  const parse = (stdout: string): Array<AlertRecord & { source: { partition: number; offset: string } }> =>
    stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  // Time range [T0 + 30 s, T0 + 90 s): the record timestamps, not the window times.
  const from = T0 + 30_000;
  const to = T0 + 90_000;
  const inTime = (p: Produced): boolean => p.timestamp >= from && p.timestamp < to;
  const first = await replay(['--topic', topic, '--from', new Date(from).toISOString(), '--to', `ts:${to}`]);
  const second = await replay(['--topic', topic, '--from', new Date(from).toISOString(), '--to', `ts:${to}`]);
  assert.equal(second.stdout, first.stdout, 'two replays of the same range print the same bytes');
  const wantTime = expectedFor(inTime);
  t.diagnostic(`time range: ${produced.filter(inTime).length} records, ${wantTime.length} alerts; summary ${first.stderr.trim()}`);
  assert.ok(wantTime.length > 0 && wantTime.length < produced.filter(inTime).length, 'the range holds alerting and normal windows');
  assert.deepEqual(parse(first.stdout), wantTime);
  const summary = JSON.parse(first.stderr.trim().split('\n').at(-1)!).summary;
  assert.equal(summary.range.records, produced.filter(inTime).length);
  assert.equal(summary.partial, produced.filter((p) => inTime(p) && p.record.event_count < 8).length);
  assert.ok(summary.partial > 0, 'partial windows in range are skipped, not scored');

  // Offset range on two partitions only: [2, 9) on partition 0 and [5, 40) on partition 2 (clamped to the end).
  const offsetRange = { 0: [2, 9], 2: [5, 40] } as Record<number, [number, number]>;
  const inOffsets = (p: Produced): boolean => {
    const r = offsetRange[p.partition];
    return r !== undefined && p.offset >= r[0] && p.offset < r[1];
  };
  const byOffset = await replay(['--topic', topic, '--from', '0:2,2:5', '--to', '0:9,2:40']);
  const wantOffsets = expectedFor(inOffsets);
  t.diagnostic(`offset range: ${produced.filter(inOffsets).length} records, ${wantOffsets.length} alerts`);
  assert.ok(wantOffsets.length > 0);
  assert.deepEqual(parse(byOffset.stdout), wantOffsets);

  // Everything: the committed records only, up to the end offset (past the markers and the aborted records).
  const all = await replay(['--topic', topic]);
  const wantAll = expectedFor(() => true);
  t.diagnostic(`whole topic: ${produced.length} committed records, ${wantAll.length} alerts`);
  assert.deepEqual(parse(all.stdout), wantAll);

  // No trace: nothing produced, no new topic or subject of this run, no group holding offsets of the topic.
  assert.deepEqual(await admin.fetchTopicOffsets(topic), offsetsBefore);
  const topicsAfter = await admin.listTopics();
  assert.deepEqual(topicsAfter.filter((x) => x.includes(id)).sort(), topicsBefore.filter((x) => x.includes(id)).sort());
  assert.deepEqual((await subjects()).filter((s) => s.includes(id)).sort(), subjectsBefore.filter((s) => s.includes(id)).sort());
  const newGroups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => !groupsBefore.has(g));
  // The replays' one-off groups are deleted after use; a group of another run may appear meanwhile,
  // so what is checked is the guarantee itself: no group holds offsets of this topic.
  t.diagnostic(`groups created meanwhile (by anyone): ${newGroups.length}, of them one-off readers: ${newGroups.filter((g) => g.startsWith('pitwall-history-')).length}`);
  for (const groupId of newGroups) {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.ok(
      offsets!.partitions.every((p) => p.offset === '-1'),
      `group ${groupId} committed offsets of ${topic}`,
    );
  }
});
