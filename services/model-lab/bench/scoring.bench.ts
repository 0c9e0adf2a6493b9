/**
 * Scoring throughput per TensorFlow.js backend:
 * `npx turbo run build && npm run bench -w @pitwall/model-lab`.
 *
 * For each backend (tensorflow = tfjs-node, wasm, cpu; one that does not initialise is reported as
 * unavailable with the reason), each model format (the committed layers model models/pitwall-ae/1,
 * and the graph model tensorflowjs_converter made of the same weights from a SavedModel, imported
 * as a version) and batches of 256 and 1024 windows:
 *   a) raw: one model.predict of an already normalized batch, including the tensor upload and the
 *      read-back of the reconstruction (what any caller of predict pays);
 *   b) service path in-process, minus Kafka: the scoring service's own per-chunk function
 *      (chunk.ts createChunkScorer): decode the Confluent-framed Avro features records,
 *      featureVector, coverage and finiteness checks, scoreBatch, buildScore + Avro encode for
 *      every window, buildAlert + Avro encode for the anomalous ones;
 *   and the ratio b/a in windows per second (how much of the model's speed the service keeps).
 * c) optional, end to end on the local Kafka: N feature records produced to private topics, the
 *    service running in-process (createScoring) with the best backend, timed until the group has
 *    committed every offset. Skipped with a message when Kafka does not answer (bench only).
 *
 * The feature vectors are simulated healthy windows (the training simulator), plus ~10 % with
 * one sensor shifted by 6 standard deviations so that alerts are built and encoded too.
 * Prints a table and writes bench-results/scoring-<date>.json. Bounded: ~2.5 s per measurement.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { Kafka, KafkaMessage } from 'kafkajs';
import {
  configReader,
  localAdminEnv,
  readKafkaSecurity,
  createAvroCodec,
  createKafka,
  defaultSchemasDir,
  featureFields,
  featureVector,
  loadSchemaFile,
  SENSOR_NAMES,
  silentLogger,
  type AlertRecord,
  type AvroCodec,
  type ScoreRecord,
  type SchemaStore,
  repoDir,
} from '@pitwall/common';
import { fixedSchemaStore } from '@pitwall/common/testing';
import { type BackendName, defaultModelsDir, type LoadedModel, loadModelDir, type ModelFormat, reconstruct, selectBackend } from '@pitwall/model';
import { type ChunkOutcome, createChunkScorer, createDriftMonitor, createScoring, type FeatureRecord } from '@pitwall/scoring';
import { importModel } from '../src/model-import.js';
import { fleetWindows, TRAINING_EPOCH_TS, WINDOW_SIZE_MS } from '../src/training.js';

const BATCH_SIZES = [256, 1024] as const;
const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
/** Time per measurement after warm-up; at least MIN_ITERATIONS batches either way. */
const MEASURE_MS = 2_500;
const MIN_ITERATIONS = 5;
const E2E_RECORDS = 20_000;
const E2E_TIMEOUT_MS = 60_000;
const BROKER = process.env.KAFKA_BROKERS?.split(',')[0] ?? '127.0.0.1:9092';
/** Kafka's security settings: the environment's, else the local brokers' admin identity (scripts/infra.sh). */
const KAFKA_SECURITY = (() => {
  const c = configReader({ ...localAdminEnv(process.env.PITWALL_HOME ?? repoDir(import.meta.url, '.pitwall')), ...process.env });
  return c.done({ security: readKafkaSecurity(c) }).security;
})();
/** tensorflowjs_converter's graph model of the committed weights (test/fixtures/tfjs-graph/make_fixtures.py). */
const GRAPH_FIXTURE = fileURLToPath(new URL('../../test/fixtures/tfjs-graph/pitwall-ae/model.json', import.meta.url));

const log = (line: string): void => void process.stdout.write(`[bench] ${line}\n`);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

interface Codecs {
  features: AvroCodec<FeatureRecord>;
  alerts: AvroCodec<AlertRecord>;
  scores: AvroCodec<ScoreRecord>;
}

async function codecs(store?: (s: unknown) => SchemaStore): Promise<Codecs> {
  const dir = defaultSchemasDir();
  const [f, a, s] = await Promise.all([loadSchemaFile(dir, 'features', 1), loadSchemaFile(dir, 'alert', 1), loadSchemaFile(dir, 'score', 1)]);
  const mk = store ?? ((schema: unknown) => fixedSchemaStore(schema));
  return {
    features: await createAvroCodec<FeatureRecord>(mk(f), 'bench-features-value', f),
    alerts: await createAvroCodec<AlertRecord>(mk(a), 'bench-alerts-value', a),
    scores: await createAvroCodec<ScoreRecord>(mk(s), 'bench-scores-value', s),
  };
}

/** Simulated windows as `vehicle.features` records; every tenth gets one sensor shifted by 6 std. */
function plausibleRecords(n: number, std: readonly number[], features: readonly string[]): FeatureRecord[] {
  const pool = fleetWindows({ cars: 12, seed: 4242, idPrefix: 'bench', fromTs: TRAINING_EPOCH_TS, toTs: TRAINING_EPOCH_TS + 15 * 60_000 });
  let seed = 99;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, (_, i) => {
    const w = pool[Math.floor(rand() * pool.length)]!;
    const v = Float64Array.from(w.vector);
    if (i % 10 === 0) {
      const sensor = SENSOR_NAMES[Math.floor(rand() * SENSOR_NAMES.length)]!;
      features.forEach((f, j) => {
        if (f.startsWith(`${sensor}_`)) v[j]! += 6 * std[j]!;
      });
    }
    const start = w.windowStart + Math.floor(i / pool.length) * WINDOW_SIZE_MS * 1_000;
    return { vehicle_id: `${w.vehicleId}-${i % 500}`, window_start: start, window_end: start + WINDOW_SIZE_MS, event_count: w.events, ...featureFields(v) };
  });
}

/** Runs `fn` (one batch of `n` windows) repeatedly for MEASURE_MS after a warm-up; windows per second. */
async function measure(n: number, fn: () => unknown): Promise<{ windowsPerSecond: number; iterations: number; msPerBatch: number }> {
  for (let i = 0; i < 3; i++) await fn();
  gc();
  let iterations = 0;
  const t0 = performance.now();
  let elapsed = 0;
  while (iterations < MIN_ITERATIONS || elapsed < MEASURE_MS) {
    await fn();
    iterations++;
    elapsed = performance.now() - t0;
  }
  return { windowsPerSecond: (n * iterations * 1000) / elapsed, iterations, msPerBatch: elapsed / iterations };
}

/** Feature records as the consumer hands them to the service: values with offsets. */
const asKafkaMessages = (buffers: readonly Buffer[]): KafkaMessage[] =>
  buffers.map((value, i) => ({ key: null, value, offset: String(i), timestamp: '0', attributes: 0, headers: {}, size: value.length }) as unknown as KafkaMessage);

/** The service's own per-chunk code (chunk.ts), minus the producer: the outcome it would send. */
function servicePath(model: LoadedModel, c: Codecs, withDrift = false): (messages: readonly KafkaMessage[]) => Promise<ChunkOutcome> {
  // As main.ts serves it: fleet over a period and per vehicle, PSI computed only at scrape/report time.
  const drift = withDrift ? createDriftMonitor({ periodMs: 900_000, vehicleWindows: 120, maxVehicles: 2_000, instance: 'bench', log: silentLogger }) : undefined;
  const scoreChunk = createChunkScorer({
    drift,
    featuresCodec: c.features,
    alertsCodec: c.alerts,
    scoresCodec: c.scores,
    source: { current: () => model },
    featuresTopic: 'bench.features',
    counters: { inc: () => {} },
    log: silentLogger,
    now: Date.now,
  });
  return (messages) => scoreChunk(0, messages);
}

interface BatchResult {
  batchSize: number;
  raw: { windowsPerSecond: number; msPerBatch: number; iterations: number };
  service: { windowsPerSecond: number; msPerBatch: number; iterations: number; alertsPerBatch: number };
  ratio: number;
  /** The service path with the drift monitor (drift.ts) fed every window, and its speed relative to without. */
  serviceWithDrift: { windowsPerSecond: number; msPerBatch: number; iterations: number };
  driftRatio: number;
  leakedTensors: number;
}

/** The same weights in both formats the scorer serves: the committed layers model and its converted SavedModel. */
interface ModelUnderTest {
  format: ModelFormat;
  dir: string;
}

type BackendResult = { backend: BackendName; status: 'ok'; formats: Array<{ format: ModelFormat; batches: BatchResult[] }> } | { backend: BackendName; status: 'unavailable'; reason: string };

async function benchBackend(name: BackendName, models: readonly ModelUnderTest[], c: Codecs, records: readonly FeatureRecord[]): Promise<BackendResult> {
  try {
    await selectBackend({ override: name, log: silentLogger });
  } catch (err) {
    return { backend: name, status: 'unavailable', reason: (err as Error).message };
  }
  const formats: Array<{ format: ModelFormat; batches: BatchResult[] }> = [];
  for (const m of models) {
    log(`backend ${name}, ${m.format} ...`);
    formats.push({ format: m.format, batches: await benchModel(m.dir, c, records) });
    gc();
  }
  return { backend: name, status: 'ok', formats };
}

/** Raw predict and the service path at every batch size, on the backend already selected. */
async function benchModel(modelDir: string, c: Codecs, records: readonly FeatureRecord[]): Promise<BatchResult[]> {
  const model = await loadModelDir(modelDir);
  const meta = model.metadata;
  const d = meta.features.length;
  const batches: BatchResult[] = [];
  try {
    for (const n of BATCH_SIZES) {
      const chunk = records.slice(0, n);
      const buffers = chunk.map((r) => c.features.encode(r));
      const z = new Float32Array(n * d);
      chunk.forEach((r, i) => {
        const v = featureVector(r, meta.features);
        for (let j = 0; j < d; j++) z[i * d + j] = (v[j]! - meta.normalization.mean[j]!) / meta.normalization.std[j]!;
      });
      const before = tf.memory().numTensors;
      // The reconstruction is read outside tf.tidy, as scoreBatch reads its errors: returning the
      // array from the tidy made tfjs walk every element (until 2026-12-03 the raw path paid that,
      // which flattered the service/raw ratio).
      const raw = await measure(n, () => {
        const out = tf.tidy(() => reconstruct(model.model, tf.tensor2d(z, [n, d])));
        try {
          out.dataSync();
        } finally {
          out.dispose();
        }
      });
      const messages = asKafkaMessages(buffers);
      const scoreChunk = servicePath(model, c);
      let alertsPerBatch = 0;
      const service = await measure(n, async () => {
        alertsPerBatch = (await scoreChunk(messages)).alerts.length;
      });
      const scoreChunkDrift = servicePath(model, c, true);
      const serviceWithDrift = await measure(n, () => scoreChunkDrift(messages));
      batches.push({
        batchSize: n,
        raw,
        service: { ...service, alertsPerBatch },
        ratio: service.windowsPerSecond / raw.windowsPerSecond,
        serviceWithDrift,
        driftRatio: serviceWithDrift.windowsPerSecond / service.windowsPerSecond,
        leakedTensors: tf.memory().numTensors - before,
      });
    }
  } finally {
    model.model.dispose();
  }
  return batches;
}

/** Whether something accepts TCP connections at host:port within 2 s. */
function reachable(hostPort: string): Promise<string | undefined> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (problem: string | undefined): void => {
      s.destroy();
      resolve(problem);
    };
    s.setTimeout(2_000, () => done('timed out'));
    s.once('connect', () => done(undefined));
    s.once('error', (err) => done(err.message));
  });
}

type EndToEnd =
  | { status: 'skipped'; reason: string }
  | {
      status: 'ok' | 'timeout';
      backend: string;
      records: number;
      partitions: number;
      batchSize: number;
      produceSeconds: number;
      secondsToAllCommitted: number;
      groupJoinSeconds: number;
      windowsPerSecond: number;
      alerts: number;
      scores: number;
    };

async function endToEnd(modelDir: string, records: readonly FeatureRecord[]): Promise<EndToEnd> {
  const problem = await reachable(BROKER);
  if (problem) return { status: 'skipped', reason: `Kafka not reachable at ${BROKER} (${problem}); start the local brokers to include the end-to-end run` };
  const choice = await selectBackend({ log: silentLogger });
  const model = await loadModelDir(modelDir);
  const c = await codecs();
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const topics = { features: `bench.scoring.${run}.features`, alerts: `bench.scoring.${run}.alerts`, scores: `bench.scoring.${run}.scores`, featuresDlq: `bench.scoring.${run}.features.dlq` };
  const groupId = `bench-scoring-${run}`;
  const partitions = 3;
  const batchSize = 500;
  const kafka: Kafka = createKafka({ kafka: { brokers: [BROKER], clientId: `pitwall-bench-${run}`, security: KAFKA_SECURITY } }, silentLogger);
  const admin = kafka.admin();
  await admin.connect();
  const scoring = createScoring({
    kafka,
    featuresCodec: c.features,
    alertsCodec: c.alerts,
    scoresCodec: c.scores,
    model,
    config: { topics, groupId, batchSize, partitions, fromBeginning: true },
    log: silentLogger,
  });
  try {
    await admin.createTopics({ topics: Object.values(topics).map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    const t0 = performance.now();
    for (let i = 0; i < records.length; i += 1_000) {
      const messages = records.slice(i, i + 1_000).map((r) => ({ key: r.vehicle_id, value: c.features.encode(r) }));
      await producer.send({ topic: topics.features, messages, acks: -1 });
    }
    const produceSeconds = (performance.now() - t0) / 1000;
    await producer.disconnect();
    const ends = await admin.fetchTopicOffsets(topics.features);
    const target = ends.reduce((s, p) => s + Number(p.offset), 0);

    const started = performance.now();
    await scoring.start();
    let firstBatchAt: number | undefined;
    let committed = 0;
    while (performance.now() - started < E2E_TIMEOUT_MS) {
      if (firstBatchAt === undefined && scoring.stats().lastBatchAt !== null) firstBatchAt = performance.now();
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topics.features] });
      committed = (offsets?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
      if (committed >= target) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const finished = performance.now();
    const stats = scoring.stats().counters;
    const join = ((firstBatchAt ?? finished) - started) / 1000;
    const busy = (finished - (firstBatchAt ?? started)) / 1000;
    return {
      status: committed >= target ? 'ok' : 'timeout',
      backend: choice.backend,
      records: target,
      partitions,
      batchSize,
      produceSeconds,
      secondsToAllCommitted: (finished - started) / 1000,
      groupJoinSeconds: join,
      // From the first processed batch on: group join and topic provisioning are not throughput.
      windowsPerSecond: busy > 0 ? committed / busy : Number.NaN,
      alerts: stats['pitwall_scoring_alerts_produced_total'] ?? 0,
      scores: stats['pitwall_scoring_scores_produced_total'] ?? 0,
    };
  } finally {
    await scoring.close().catch(() => {});
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await admin.disconnect();
    model.model.dispose();
  }
}

const fmt = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

async function main(): Promise<void> {
  const t0 = performance.now();
  tf.enableProdMode();
  const modelDir = path.join(defaultModelsDir(), 'pitwall-ae', '1');
  await tf.setBackend('cpu');
  const probe = await loadModelDir(modelDir);
  const { name: _name, version: _version, ...userMeta } = probe.metadata;
  const { std } = probe.metadata.normalization;
  const features = probe.metadata.features;
  probe.model.dispose();
  const c = await codecs();
  const records = plausibleRecords(Math.max(...BATCH_SIZES, E2E_RECORDS), std, features);
  log(`${records.length} simulated feature records ready (${((performance.now() - t0) / 1000).toFixed(1)} s); model ${modelDir}`);

  // The graph model: tensorflowjs_converter's output of the same weights, through the real importer.
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pitwall-bench-models-'));
  const graph = await importModel({ format: 'tfjs', file: GRAPH_FIXTURE, name: 'pitwall-ae', version: '1', metadata: userMeta, modelsDir: scratch });
  const models: ModelUnderTest[] = [
    { format: 'layers-model', dir: modelDir },
    { format: 'graph-model', dir: graph.dir },
  ];
  const backends: BackendResult[] = [];
  try {
    for (const name of BACKENDS) backends.push(await benchBackend(name, models, c, records));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  log('end to end through Kafka ...');
  const e2e = await endToEnd(modelDir, records.slice(0, E2E_RECORDS)).catch((err: Error): EndToEnd => ({ status: 'skipped', reason: `failed: ${err.message}` }));

  const lines = ['', 'backend     format         batch   raw predict w/s   service path w/s   service/raw   alerts/batch   with drift w/s   drift/without'];
  for (const b of backends) {
    if (b.status === 'unavailable') {
      lines.push(`${b.backend.padEnd(10)}  unavailable: ${b.reason}`);
      continue;
    }
    for (const { format, batches } of b.formats) {
      for (const r of batches) {
        lines.push(
          `${b.backend.padEnd(10)}  ${format.padEnd(12)}  ${String(r.batchSize).padStart(5)}   ${fmt(r.raw.windowsPerSecond).padStart(15)}   ${fmt(r.service.windowsPerSecond).padStart(16)}   ${r.ratio.toFixed(2).padStart(11)}   ${String(r.service.alertsPerBatch).padStart(12)}   ${fmt(r.serviceWithDrift.windowsPerSecond).padStart(14)}   ${r.driftRatio.toFixed(3).padStart(13)}`,
        );
      }
    }
  }
  lines.push(
    e2e.status === 'skipped'
      ? `end to end: skipped: ${e2e.reason}`
      : `end to end (${e2e.status}, ${e2e.backend}, ${e2e.records} records, ${e2e.partitions} partitions, chunks of ${e2e.batchSize}): ${fmt(e2e.windowsPerSecond)} windows/s after the group join (${e2e.groupJoinSeconds.toFixed(1)} s); all committed after ${e2e.secondsToAllCommitted.toFixed(1)} s; ${e2e.scores} scores, ${e2e.alerts} alerts`,
  );
  process.stdout.write(lines.join('\n') + '\n\n');

  const startedAt = new Date();
  const result = {
    benchmark: 'scoring',
    startedAt: startedAt.toISOString(),
    durationSeconds: (performance.now() - t0) / 1000,
    environment: { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', loadAverage: os.loadavg(), tfjs: tf.version.tfjs },
    model: { dir: path.relative(process.cwd(), modelDir), graphModel: path.relative(process.cwd(), GRAPH_FIXTURE), measureMs: MEASURE_MS },
    data: 'simulated healthy windows (12 cars, 15 min), every tenth with one sensor shifted by 6 std',
    backends,
    endToEnd: e2e,
  };
  const outDir = repoDir(import.meta.url, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `scoring-${startedAt.toISOString().slice(0, 10)}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  log(`wrote ${file} (${result.durationSeconds.toFixed(1)} s)`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
