/**
 * Model operations on the real brokers with two scoring replicas in one consumer group. Version 1
 * is the committed layers model; version 2 is a tensorflowjs_converter graph model imported with
 * `npm run import-model -- --tfjs`, so both formats serve, swap and shadow here.
 *
 * - an activation already in model.updates beats the models directory at start-up (the replicas
 *   serve version 1 although version 2 is the highest directory and MODEL_VERSION is latest);
 * - `npm run model -- activate 2` switches both replicas (every window fed afterwards is scored
 *   by version 2, in vehicle.scores and maintenance.alerts alike), `rollback` returns both to 1;
 * - `shadow 2` makes both replicas score with version 2 alongside, never producing from it; the
 *   summed model.shadow reports equal the agreement computed from the active scores.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { createAvroCodec, defaultSchemasDir, FEATURE_NAMES, loadSchemaFile, type AlertRecord, type ScoreRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import {
  adminSchemaStore,
  INFRA,
  isolatedEnv,
  kafkaClientConfig,
  kafkaIdentityEnv,
  REPO,
  runId,
  type ServiceProcess,
  startService,
  waitFor,
  waitForCaughtUp,
  waitForLog,
  waitReady,
} from './support/stack.js';

const run = promisify(execFile);
const GRAPH_FIXTURE = path.join(REPO, 'services/model-lab/test/fixtures/tfjs-graph/pitwall-ae/model.json');

interface ShadowReport {
  schema: string;
  instance: string;
  active: { version: string; windows: number; alerts: number };
  shadow: { version: string; windows: number; alerts: number };
  agreement: { both: number; active_only: number; shadow_only: number; neither: number; ratio: number | null };
}

test('model.updates: both replicas activate, roll back and shadow the same version', { timeout: 420_000 }, async (t) => {
  const id = runId();
  const env = isolatedEnv(id);
  const modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pitwall-models-'));
  await cp(path.join(REPO, 'models/pitwall-ae/1'), path.join(modelsDir, 'pitwall-ae/1'), { recursive: true });
  const meta1 = JSON.parse(await readFile(path.join(modelsDir, 'pitwall-ae/1/metadata.json'), 'utf8')) as {
    threshold: number;
    normalization: { mean: number[]; std: number[] };
  };
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const cliEnv = { PATH: process.env.PATH ?? '', KAFKA_BROKERS: INFRA.kafka, ...kafkaIdentityEnv('admin'), TOPIC_MODEL_UPDATES: env.TOPIC_MODEL_UPDATES, LOG_LEVEL: 'error' };
  const cli = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(process.execPath, [path.join(REPO, 'services/model-lab/dist/bin/model.js'), ...args, '--models-dir', modelsDir, '--by', 'e2e'], {
      env: cliEnv,
      timeout: 90_000,
    });
    t.diagnostic(`model ${args.join(' ')}: ${stdout.trim()}`);
    return stdout;
  };
  // Version `v` is what a data scientist hands over from elsewhere: tensorflowjs_converter's graph
  // model of a TensorFlow SavedModel (the committed weights, re-expressed), imported with
  // `npm run import-model -- --tfjs` and version 1's metadata at another threshold. The importer
  // writes it under a temporary name and renames it into place, so it appears atomically.
  const metaFile = path.join(modelsDir, 'import-metadata.json');
  const addVersion = async (v: string, threshold: number): Promise<void> => {
    const { name: _n, version: _v, ...rest } = JSON.parse(await readFile(path.join(modelsDir, 'pitwall-ae/1/metadata.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(metaFile, JSON.stringify({ ...rest, threshold, description: 'pitwall-ae weights as a converted SavedModel' }));
    const { stdout } = await run(
      process.execPath,
      [path.join(REPO, 'services/model-lab/dist/bin/model-import.js'), '--tfjs', GRAPH_FIXTURE, '--name', 'pitwall-ae', '--version', v, '--metadata', metaFile, '--models-dir', modelsDir, '--force'],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
    );
    t.diagnostic(stdout.trim());
  };
  // Refused before anything is published: exit code 2.
  await assert.rejects(cli('activate', '5'), (err: { code?: number; stderr?: string }) => err.code === 2 && /no version 5/.test(err.stderr ?? ''));
  await assert.rejects(cli('rollback'), (err: { code?: number; stderr?: string }) => err.code === 2 && /nothing to roll back to/.test(err.stderr ?? ''));
  await cli('activate', '1');
  // Version 2 is the highest directory from the start: only model.updates keeps the replicas on 1.
  // Its threshold is set after phase A, from the scores seen (see below); a placeholder for now.
  await addVersion('2', meta1.threshold);

  const serviceEnv = {
    ...env,
    MODEL_DIR: modelsDir,
    MODEL_POLL_MS: '300',
    TFJS_BACKEND: 'wasm',
    SCORING_SHADOW_REPORT_MS: '1000',
  };
  const replicas: ServiceProcess[] = [];
  const readers: { stop(): Promise<void> }[] = [];
  try {
    replicas.push(await startService('scoring', { ...serviceEnv, SCORING_INSTANCE_ID: `${id}-a` }, `model-ops-${id}-a`));
    replicas.push(await startService('scoring', { ...serviceEnv, SCORING_INSTANCE_ID: `${id}-b` }, `model-ops-${id}-b`));
    await waitReady(replicas, 120_000);

    await admin.connect();
    const store = adminSchemaStore();
    const schemas = defaultSchemasDir();
    const features = await createAvroCodec<Record<string, unknown>>(store, `${env.TOPIC_FEATURES}-value`, await loadSchemaFile(schemas, 'features', 1));
    const scoresCodec = await createAvroCodec<ScoreRecord>(store, `${env.TOPIC_SCORES}-value`, await loadSchemaFile(schemas, 'score', 1));
    const alertsCodec = await createAvroCodec<AlertRecord>(store, `${env.TOPIC_ALERTS}-value`, await loadSchemaFile(schemas, 'alert', 1));
    const scoresReader = await collect(kafka, { topic: env.TOPIC_SCORES, decode: scoresCodec });
    readers.push(scoresReader);
    const alertsReader = await collect(kafka, { topic: env.TOPIC_ALERTS, decode: alertsCodec });
    readers.push(alertsReader);
    const reportsReader = await collect(kafka, { topic: env.TOPIC_SHADOW_REPORTS, decode: (v: Buffer) => JSON.parse(v.toString()) as ShadowReport });
    readers.push(reportsReader);
    const scores = (): ScoreRecord[] => scoresReader.values();
    const alerts = (): AlertRecord[] => alertsReader.values();
    const reports = (): ShadowReport[] => reportsReader.values();

    // Vehicle v runs its coolant at mean + k_v std: scores from normal to far above the threshold.
    const K = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30, 40];
    const VEHICLES = K.length;
    const ROUNDS = 4;
    const T = Date.UTC(2026, 0, 1);
    const windowOf = (vehicle: number, start: number): Buffer => {
      const rec: Record<string, unknown> = { vehicle_id: `${id}-${vehicle}`, window_start: start, window_end: start + 10_000, event_count: 10 };
      FEATURE_NAMES.forEach((name, i) => (rec[name] = meta1.normalization.mean[i]! + (name.startsWith('coolant_temp_') ? K[vehicle]! * meta1.normalization.std[i]! : 0)));
      return features.encode(rec);
    };
    const producer = kafka.producer();
    await producer.connect();
    const keyOf = (r: { vehicle_id: string; window_start: number }): string => `${r.vehicle_id}@${r.window_start}`;
    /** Feeds phase p and waits until every window of it has a score; returns the phase's score records. */
    const phase = async (p: number): Promise<ScoreRecord[]> => {
      const starts = Array.from({ length: ROUNDS }, (_, r) => T + (p * 100 + r) * 10_000);
      for (const start of starts) {
        await producer.send({
          topic: env.TOPIC_FEATURES,
          messages: Array.from({ length: VEHICLES }, (_, v) => ({ key: `${id}-${v}`, value: windowOf(v, start) })),
        });
      }
      const inPhase = (r: { window_start: number }): boolean => starts.includes(r.window_start);
      await scoresReader.waitFor(() => new Set(scores().filter(inPhase).map(keyOf)).size === ROUNDS * VEHICLES, 90_000, `scores of phase ${p}`);
      // Alerts are committed in the same transaction as the scores: once the alerts reader has
      // read to the topic's end, every alert of these scores is in `alerts`.
      await waitForCaughtUp(admin, [{ group: alertsReader.groupId, topic: env.TOPIC_ALERTS }], 60_000);
      const out = scores().filter(inPhase);
      const versions = [...new Set(out.map((s) => s.model_version))].join(',');
      t.diagnostic(`phase ${p}: ${out.length} scores for ${ROUNDS * VEHICLES} windows, versions ${versions}, ${out.filter((s) => s.anomalous).length} anomalous`);
      return out;
    };
    const logOf = (r: ServiceProcess): Promise<string> => readFile(r.logFile, 'utf8');
    const inEveryLog = (re: RegExp): Promise<unknown> => Promise.all(replicas.map((r) => waitForLog(r, re, 60_000)));
    const alertsIn = (s: ScoreRecord[]): AlertRecord[] => alerts().filter((a) => s.some((x) => keyOf(x) === keyOf(a)));

    // Phase A: the activation in the log wins over the directory's latest version.
    const a = await phase(0);
    assert.deepEqual([...new Set(a.map((s) => s.model_version))], ['1'], 'started on the version model.updates names');
    const alertsA = alertsIn(a);
    assert.equal(alertsA.length, a.filter((s) => s.anomalous).length, 'one alert per anomalous score');
    assert.ok(
      alertsA.every((al) => al.model_version === '1' && a.some((s) => s.alert_id === al.alert_id)),
      'alerts name version 1 and match their scores',
    );

    // Version 2's threshold lies between two normal scores of version 1, so the shadow disagrees on some windows.
    const normal = [...new Set(a.filter((s) => !s.anomalous).map((s) => s.score))].sort((x, y) => x - y);
    assert.ok(normal.length >= 3, `enough distinct normal scores: ${normal.join(', ')}`);
    const mid = Math.floor(normal.length / 2);
    const threshold2 = (normal[mid - 1]! + normal[mid]!) / 2;
    await addVersion('2', threshold2);

    // Phase B: activate 2 everywhere.
    await cli('activate', '2');
    await inEveryLog(/"msg":"model swapped","active":"pitwall-ae@2",.*"format":"graph-model"/);
    const b = await phase(1);
    assert.deepEqual([...new Set(b.map((s) => s.model_version))], ['2'], 'both replicas score with version 2 after the event');
    assert.ok(b.every((s) => s.threshold === threshold2 && s.anomalous === s.score > threshold2));
    assert.ok(alertsIn(b).length > 0 && alertsIn(b).every((al) => al.model_version === '2'));

    // Phase C: rollback returns to 1 everywhere.
    const status = await cli('status');
    assert.match(status, /rollback would activate: 1/);
    await cli('rollback');
    await inEveryLog(/"msg":"model swapped","active":"pitwall-ae@1",.*"format":"layers-model"/);
    const c = await phase(2);
    assert.deepEqual([...new Set(c.map((s) => s.model_version))], ['1'], 'rolled back to version 1');

    // Phase D: shadow 2 next to active 1.
    await cli('shadow', '2');
    await inEveryLog(/"msg":"shadow model serving"/);
    const d = await phase(3);
    assert.deepEqual([...new Set(d.map((s) => s.model_version))], ['1'], 'the shadow never writes vehicle.scores');
    assert.ok(
      alertsIn(d).every((al) => al.model_version === '1'),
      'the shadow never alerts',
    );
    assert.ok(!alerts().some((al) => al.model_version === '2' && d.some((s) => keyOf(s) === keyOf(al))));

    // Both replicas scored something in every phase (partitions are shared between them).
    for (const r of replicas) assert.match(await logOf(r), /"msg":"(alerts produced|shadow report)"/);

    // Stop the replicas: each publishes a last report on close.
    const codes = await Promise.all(replicas.map((r) => r.stop()));
    assert.deepEqual(codes, [0, 0], 'clean shutdown');
    const expected = { both: 0, active_only: 0, shadow_only: 0, neither: 0 };
    for (const s of d) {
      const shadowAlerts = s.score > threshold2;
      if (s.anomalous && shadowAlerts) expected.both++;
      else if (s.anomalous) expected.active_only++;
      else if (shadowAlerts) expected.shadow_only++;
      else expected.neither++;
    }
    const sum = (): typeof expected => {
      const out = { both: 0, active_only: 0, shadow_only: 0, neither: 0 };
      for (const r of reports().filter((x) => x.shadow.version === '2')) for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] += r.agreement[k];
      return out;
    };
    await waitFor(
      'shadow reports covering phase D',
      () => {
        const s = sum();
        return s.both + s.active_only + s.shadow_only + s.neither >= d.length || undefined;
      },
      30_000,
    ).catch(() => undefined);
    t.diagnostic(`agreement expected ${JSON.stringify(expected)}, reported ${JSON.stringify(sum())} in ${reports().length} reports`);
    assert.deepEqual(sum(), expected, 'reports equal the agreement computed from the active scores');
    assert.ok(expected.shadow_only > 0 && expected.neither > 0, 'the comparison is not trivial');
    assert.ok(reports().every((r) => r.schema === 'pitwall.shadow-report.v1' && r.active.version === '1'));
    assert.deepEqual(
      new Set(
        reports()
          .filter((r) => r.active.windows > 0)
          .map((r) => r.instance),
      ),
      new Set([`${id}-a`, `${id}-b`]),
      'both replicas report',
    );
    await producer.disconnect();
  } finally {
    await Promise.all(readers.map((r) => r.stop()));
    await admin.disconnect();
    await Promise.all(replicas.map((r) => r.stop()));
    await rm(modelsDir, { recursive: true, force: true });
  }
});
