/**
 * Windowing benchmark: `npm run bench` at the repository root (turbo builds first), or
 * `npm run bench -w services/windowing` after a build. Needs the local brokers (`bash scripts/infra.sh up`).
 *
 *   a) state bytes per vehicle: V8 heap + ArrayBuffer bytes of a partition state holding, per
 *      vehicle, one open 10 s window of 10 events x 18 sensors;
 *   b) core throughput: events/s through createPartitionState add + drainClosed + commitPoint, the
 *      calls windowing makes per record and per fetched batch, with no I/O; per wall second and per
 *      CPU second of the process (the figure to compare on a machine shared with other work);
 *   d) a closed window's features record: toFeatureRecord + Avro encode per record, against the
 *      same record built by spreading featureFields into a literal (what windowing did until
 *      2026-12-04); at 0.1 Hz every reading closes a window, so this is paid per reading;
 *   c) end to end on the local Kafka: the windowing service in-process (createWindowing) against
 *      null pipelines with the same consumer and producer settings that decode each record and
 *      produce one small record per input record (transactional like windowing, or idempotent with
 *      a plain offset commit), or produce nothing (decode-only floor). All read the same
 *      pre-produced topic from fresh consumer groups, over several rounds in rotated order.
 *
 * Loopback only (non-loopback broker or registry addresses are refused), bounded in count and time
 * (each pipeline run by BENCH_PHASE_TIMEOUT_MS, the whole benchmark by BENCH_TOTAL_TIMEOUT_MS).
 * Prints tables and writes bench-results/windowing.json at the repository root. Every run creates
 * its own topics (bench.<run id>.*), consumer groups and transactional ids; nothing is deleted.
 *
 * Environment (all optional): KAFKA_BROKERS, SCHEMA_REGISTRY_URL, BENCH_VEHICLES (2000),
 * BENCH_SECONDS (100), BENCH_CORE_EVENTS (1000000), BENCH_ROUNDS (3), BENCH_PHASE_TIMEOUT_MS (60000),
 * BENCH_TOTAL_TIMEOUT_MS (300000), BENCH_PARTS (state,core,record,e2e: which parts run; a), b)
 * and d) need no broker, so `BENCH_PARTS=state,core,record` runs without one).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Admin, Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import {
  configReader,
  createAvroCodec,
  createKafka,
  featureFields,
  createLogger,
  createSchemaStore,
  localAdminEnv,
  readKafkaSecurity,
  readRegistryCredentials,
  defaultSchemasDir,
  ensureTopics,
  loadSchemaFile,
  SENSORS,
  SENSOR_NAMES,
  windowDef,
  type AvroCodec,
  type Logger,
  type TelemetryRecord,
  repoRoot,
} from '@pitwall/common';
import { fixedSchemaStore } from '@pitwall/common/testing';
import { decodeResume } from '../src/commit-metadata.js';
import { createPartitionState } from '../src/partition-state.js';
import { createWindowing, toFeatureRecord, type FeatureRecord, type WindowingConfig } from '../src/windowing.js';
import { METRICS } from '../src/metrics.js';

/** dist/bench/ -> repository root. */
const REPO = repoRoot(import.meta.url);
const RESULTS_FILE = path.join(REPO, 'bench-results', 'windowing.json');
/** The service's defaults: 10 s tumbling windows, 2 s grace, 1 MiB fetches per partition. */
const WINDOW = windowDef(10_000, 10_000, 2_000);
const FETCH_BYTES = 1_048_576;
const PARTITIONS = 3;
/** Event-time origin, aligned to the window size so a vehicle at 1 Hz fills whole windows. */
const T0 = 1_700_000_000_000;

function readBenchConfig() {
  // The local brokers' admin identities (scripts/infra.sh), unless the environment names others.
  const c = configReader({ ...localAdminEnv(process.env.PITWALL_HOME ?? path.join(REPO, '.pitwall')), ...process.env });
  return c.done({
    brokers: c.list('KAFKA_BROKERS', ['127.0.0.1:9092']),
    security: readKafkaSecurity(c),
    registryUrl: c.url('SCHEMA_REGISTRY_URL', 'http://127.0.0.1:8081/apis/ccompat/v7', ['http']),
    registryCredentials: readRegistryCredentials(c),
    vehicles: c.int('BENCH_VEHICLES', 2_000, { min: 1, max: 20_000 }),
    seconds: c.int('BENCH_SECONDS', 100, { min: 20, max: 600 }),
    coreEvents: c.int('BENCH_CORE_EVENTS', 1_000_000, { min: 10_000, max: 10_000_000 }),
    rounds: c.int('BENCH_ROUNDS', 3, { min: 1, max: 10 }),
    phaseTimeoutMs: c.int('BENCH_PHASE_TIMEOUT_MS', 60_000, { min: 5_000, max: 300_000 }),
    totalTimeoutMs: c.int('BENCH_TOTAL_TIMEOUT_MS', 300_000, { min: 10_000, max: 1_800_000 }),
    parts: c.list('BENCH_PARTS', ['state', 'core', 'record', 'e2e']),
  });
}

let cfg: ReturnType<typeof readBenchConfig>;
try {
  cfg = readBenchConfig();
} catch (err) {
  process.stderr.write(`[bench] invalid configuration: ${(err as Error).message}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Output helpers

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function printTable(title: string, head: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => '| ' + cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ') + ' |';
  const out = [`\n${title}`, line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)];
  process.stdout.write(out.join('\n') + '\n');
}

const say = (msg: string): void => void process.stdout.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Preconditions: loopback brokers that answer

const LOOPBACK = (host: string): boolean => host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);

function splitHostPort(broker: string): { host: string; port: number } {
  const i = broker.lastIndexOf(':');
  return { host: broker.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(broker.slice(i + 1)) };
}

function tcpReachable(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err) => done((err as NodeJS.ErrnoException).code ?? err.message));
  });
}

async function checkInfra(): Promise<void> {
  const problems: string[] = [];
  const registryHost = new URL(cfg.registryUrl).hostname;
  for (const b of cfg.brokers) if (!LOOPBACK(splitHostPort(b).host)) problems.push(`KAFKA_BROKERS: ${b} is not a loopback address (the benchmark only runs locally)`);
  if (!LOOPBACK(registryHost)) problems.push(`SCHEMA_REGISTRY_URL: ${registryHost} is not a loopback address (the benchmark only runs locally)`);
  if (problems.length === 0) {
    for (const b of cfg.brokers) {
      const { host, port } = splitHostPort(b);
      const problem = await tcpReachable(host, port, 3_000);
      if (problem) problems.push(`Kafka is not reachable at ${b} (${problem}).`);
    }
    try {
      const res = await fetch(`${cfg.registryUrl.replace(/\/$/, '')}/subjects`, { signal: AbortSignal.timeout(3_000) });
      if (!res.ok) problems.push(`The schema registry at ${cfg.registryUrl} answered HTTP ${res.status}.`);
    } catch (err) {
      problems.push(`The schema registry is not reachable at ${cfg.registryUrl} (${(err as Error).message}).`);
    }
  }
  if (problems.length > 0) {
    const unreachable = problems.some((p) => !p.includes('loopback'));
    process.stderr.write(
      ['[bench] cannot run the windowing benchmark:', ...problems.map((p) => `  - ${p}`), ...(unreachable ? ['[bench] Start the local brokers first:  bash scripts/infra.sh up'] : []), ''].join('\n'),
    );
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic telemetry

function randomValues(): Float64Array {
  const values = new Float64Array(SENSOR_NAMES.length);
  SENSORS.forEach((s, i) => {
    const [lo, hi] = s.plausible;
    const v = lo + Math.random() * (hi - lo);
    values[i] = s.kind === 'int' ? Math.round(v) : v;
  });
  return values;
}

const vehicleId = (i: number): string => `bench-car-${String(i).padStart(6, '0')}`;

// ---------------------------------------------------------------------------------------------
// a) State bytes per vehicle

interface StateBytes {
  vehicles: number;
  eventsPerVehicle: number;
  heapBytesPerVehicle: number;
  arrayBufferBytesPerVehicle: number;
  totalBytesPerVehicle: number;
}

function measureStateBytes(vehicles: number): StateBytes {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('global.gc is missing: run node with --expose-gc (npm run bench does)');
  const settle = () => {
    gc();
    gc();
  };
  settle();
  const before = process.memoryUsage();
  const state = createPartitionState(WINDOW);
  let offset = 0n;
  // Ids and values are created inside the measurement: the state holds one id per vehicle (its map
  // key) and every event's values, exactly as the service keeps them.
  for (let v = 0; v < vehicles; v++) {
    const id = vehicleId(v);
    for (let e = 0; e < 10; e++) state.add(id, T0 + e * 1_000, randomValues(), offset++);
  }
  settle();
  const after = process.memoryUsage();
  if (state.openWindows() !== vehicles || state.vehicles() !== vehicles) throw new Error('state does not hold one open window per vehicle');
  const heap = (after.heapUsed - before.heapUsed) / vehicles;
  const buffers = (after.arrayBuffers - before.arrayBuffers) / vehicles;
  return { vehicles, eventsPerVehicle: 10, heapBytesPerVehicle: heap, arrayBufferBytesPerVehicle: buffers, totalBytesPerVehicle: heap + buffers };
}

// ---------------------------------------------------------------------------------------------
// b) Core throughput

interface CoreRun {
  events: number;
  vehicles: number;
  window: string;
  batchSize: number;
  windowsEmitted: number;
  seconds: number;
  eventsPerSecond: number;
  /** Process CPU time (user + system): on a shared machine, wall time also counts waiting for a core. */
  cpuSeconds: number;
  eventsPerCpuSecond: number;
}

/**
 * Events arrive in event-time order, one per vehicle per second, in "batches" of batchSize: after
 * each batch the service drains closed windows and computes the offset to commit, so both run here.
 * Sensor values come from a pre-built pool, so the figure is the state's cost, not allocation of input.
 */
function coreThroughput(events: number, vehicles: number, batchSize: number, sizeMs: number, advanceMs: number): CoreRun {
  const def = windowDef(sizeMs, advanceMs, 2_000);
  const pool = Array.from({ length: 1024 }, randomValues);
  const ids = Array.from({ length: vehicles }, (_, i) => vehicleId(i));
  const state = createPartitionState(def);
  let emitted = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < events; i++) {
    state.add(ids[i % vehicles]!, T0 + Math.floor(i / vehicles) * 1_000, pool[i & 1023]!, BigInt(i));
    if ((i + 1) % batchSize === 0 || i === events - 1) {
      emitted += state.drainClosed().length;
      state.commitPoint(BigInt(i + 1));
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    events,
    vehicles,
    window: advanceMs === sizeMs ? `${sizeMs / 1000} s tumbling` : `${sizeMs / 1000} s / ${advanceMs / 1000} s hopping`,
    batchSize,
    windowsEmitted: emitted,
    seconds,
    eventsPerSecond: events / seconds,
    cpuSeconds,
    eventsPerCpuSecond: events / cpuSeconds,
  };
}

// ---------------------------------------------------------------------------------------------
// d) A closed window's features record

interface RecordCost {
  way: string;
  microsPerRecord: number;
  bytes: number;
}

/** µs per record of `build` + encode over ~1 s, after a warm-up; the same closed windows for every way. */
async function recordCosts(): Promise<RecordCost[]> {
  const schema = await loadSchemaFile(defaultSchemasDir(), 'features', 1);
  const codec = await createAvroCodec<FeatureRecord>(fixedSchemaStore(schema), 'bench-features-value', schema);
  const state = createPartitionState(WINDOW);
  for (let v = 0; v < 256; v++) for (let k = 0; k < 13; k++) state.add(vehicleId(v), T0 + k * 1_000, randomValues(), BigInt(v * 13 + k));
  const closed = state.drainClosed();
  const spread = (w: (typeof closed)[number]): FeatureRecord => ({ vehicle_id: w.vehicleId, window_start: w.start, window_end: w.end, event_count: w.eventCount, ...featureFields(w.features) });
  const ways: [string, (w: (typeof closed)[number]) => FeatureRecord][] = [
    ['spread into a literal (until 2026-12-04)', spread],
    ['toFeatureRecord (fields set in place)', (w) => toFeatureRecord(w)],
  ];
  const out: RecordCost[] = [];
  for (const [way, build] of ways) {
    if (closed.length === 0) throw new Error('no window closed: the bench input is wrong');
    let bytes = 0;
    for (const w of closed) bytes = codec.encode(build(w)).length;
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1_000) {
      for (const w of closed) codec.encode(build(w));
      n += closed.length;
    }
    out.push({ way, microsPerRecord: ((performance.now() - t0) * 1000) / n, bytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// c) End to end on the local broker

/** One pipeline run over the whole input topic, from a fresh consumer group. */
interface E2ERun {
  pipeline: string;
  round: number;
  events: number;
  /** Events per second from the first observed progress to the last input record processed. */
  eventsPerSecond: number;
  steadySeconds: number;
  /** From start() (connect, group join, producers) to done. */
  wallSeconds: number;
  outputRecords: number;
  /** Counters that should be zero on this input (late, duplicates, dead letters, aborts). */
  anomalies: string[];
}

/** A consuming pipeline under test: started, polled until done, closed. */
interface Pipeline {
  start(): Promise<void>;
  /** Input records processed so far (counted before their batch commits). */
  consumed(): number;
  /** True once every input record's batch has been processed, its output produced and its offsets committed. */
  done(): boolean | Promise<boolean>;
  outputRecords(): number;
  anomalies(): string[];
  close(): Promise<void>;
}

/** Polls every 10 ms; the rate excludes start-up (connect, group join) and the first batch. */
async function measure(name: string, round: number, p: Pipeline, events: number): Promise<E2ERun> {
  const t0 = performance.now();
  try {
    await p.start();
    let first: { at: number; consumed: number } | undefined;
    const deadline = t0 + cfg.phaseTimeoutMs;
    while (!(await p.done())) {
      if (performance.now() > deadline) throw new Error(`${name}: not done after ${cfg.phaseTimeoutMs} ms (consumed ${p.consumed()} of ${events})`);
      const n = p.consumed();
      if (!first && n > 0) first = { at: performance.now(), consumed: n };
      await sleep(10);
    }
    const end = performance.now();
    const from = first ?? { at: t0, consumed: 0 };
    const steadySeconds = (end - from.at) / 1000;
    return {
      pipeline: name,
      round,
      events,
      eventsPerSecond: (events - from.consumed) / Math.max(steadySeconds, 1e-3),
      steadySeconds,
      wallSeconds: (end - t0) / 1000,
      outputRecords: p.outputRecords(),
      anomalies: p.anomalies(),
    };
  } finally {
    await p.close();
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function produceTelemetry(kafka: Kafka, codec: AvroCodec<TelemetryRecord>, topic: string): Promise<{ records: number; seconds: number; bytes: number }> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = performance.now();
  let bytes = 0;
  let batch: Message[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: batch }] });
    batch = [];
  };
  // Event-time order (second by second, every vehicle once per second), as cars at 1 Hz produce it.
  for (let sec = 0; sec < cfg.seconds; sec++) {
    for (let v = 0; v < cfg.vehicles; v++) {
      const ts = T0 + sec * 1_000;
      const values = randomValues();
      const rec: TelemetryRecord = { vehicle_id: vehicleId(v), ts, out_of_range: [], received_at: ts + 40 };
      SENSOR_NAMES.forEach((name, i) => (rec[name] = values[i]!));
      const value = codec.encode(rec);
      bytes += value.length;
      batch.push({ key: rec.vehicle_id, value });
      if (batch.length === 5_000) await flush();
    }
  }
  await flush();
  await producer.disconnect();
  return { records: cfg.vehicles * cfg.seconds, seconds: (performance.now() - t0) / 1000, bytes };
}

/**
 * Null services: same consumer settings as windowing (fetch size, wait, read_committed, manual
 * commits, one partition at a time), decode every record, no windowing.
 *   'tx'         produce one 8-byte record per input record and commit the offsets in one
 *                transaction per batch, with one transactional producer per input partition, as
 *                windowing does;
 *   'plain'      the same records with an idempotent producer (acks=all), then a plain offset commit;
 *   'decodeOnly' no output: one transaction per batch carrying only the offsets (the floor under
 *                windowing, whose output is one record per closed window).
 */
type NullMode = 'tx' | 'plain' | 'decodeOnly';

function createPassThrough(
  kafka: Kafka,
  codec: AvroCodec<TelemetryRecord>,
  opts: { mode: NullMode; groupId: string; input: string; output: string; transactionalIdPrefix: string; events: number },
): Pipeline {
  const transactional = opts.mode !== 'plain';
  let consumed = 0;
  let committed = 0;
  let produced = 0;
  let consumer: Consumer | undefined;
  const producers = new Map<number, Producer>();
  const producerFor = async (partition: number): Promise<Producer> => {
    const key = transactional ? partition : -1;
    let p = producers.get(key);
    if (!p) {
      p = kafka.producer({
        ...(transactional ? { transactionalId: `${opts.transactionalIdPrefix}-${opts.input}-${partition}` } : {}),
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      producers.set(key, p);
      await p.connect();
    }
    return p;
  };
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs passes closures, meant to be destructured
  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const out: Message[] = [];
    let next: bigint | undefined;
    let n = 0;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      next = BigInt(message.offset) + 1n;
      const rec = await codec.decode(message.value!);
      consumed++;
      n++;
      if (opts.mode === 'decodeOnly') continue;
      const value = Buffer.allocUnsafe(8);
      value.writeDoubleBE(rec.ts);
      out.push({ key: message.key, value });
    }
    if (next === undefined) return;
    const producer = await producerFor(batch.partition);
    const offsets = { topic: batch.topic, partitions: [{ partition: batch.partition, offset: next.toString() }] };
    if (transactional) {
      const txn = await producer.transaction();
      if (out.length > 0) await txn.sendBatch({ topicMessages: [{ topic: opts.output, messages: out }] });
      await txn.sendOffsets({ consumerGroupId: opts.groupId, topics: [offsets] });
      await txn.commit();
    } else {
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic: opts.output, messages: out }] });
      await consumer!.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next.toString() }]);
    }
    committed += n;
    produced += out.length;
    resolveOffset((next - 1n).toString());
    await heartbeat();
  };
  return {
    consumed: () => consumed,
    done: () => committed >= opts.events,
    outputRecords: () => produced,
    anomalies: () => [],
    async start() {
      consumer = kafka.consumer({
        groupId: opts.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 250,
        maxBytesPerPartition: FETCH_BYTES,
        readUncommitted: false,
      });
      await consumer.connect();
      await consumer.subscribe({ topic: opts.input, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
    },
    async close() {
      await consumer?.disconnect();
      await Promise.all([...producers.values()].map((p) => p.disconnect()));
    },
  };
}

const PIPELINES = {
  windowing: 'windowing (createWindowing)',
  passThroughTx: 'null pass-through, transactional (same settings as windowing)',
  passThrough: 'null pass-through, idempotent acks=all + offset commit',
  decodeOnly: 'null decode-only, offsets in a transaction, no output',
} as const;
type PipelineKey = keyof typeof PIPELINES;

interface EndToEnd {
  runId: string;
  input: { topic: string; partitions: number; records: number; vehicles: number; eventSeconds: number; bytesPerRecord: number; produceSeconds: number };
  runs: E2ERun[];
  /** Median events/s per pipeline over the rounds. */
  summary: Record<PipelineKey, { name: string; medianEventsPerSecond: number; rounds: number }>;
  ratio: { windowingVsPassThroughTx: number; windowingVsPassThrough: number; windowingVsDecodeOnly: number };
}

/** Every topic of a run is bench.<run id>.<name>. */
const benchTopic = (runId: string, name: string): string => `bench.${runId}.${name}`;

async function endToEnd(): Promise<EndToEnd> {
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
  const topic = (name: string) => benchTopic(runId, name);
  const log = createLogger({ service: 'windowing-bench', level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  const kafka = createKafka({ kafka: { brokers: [...cfg.brokers], clientId: `pitwall-bench-${runId}`, security: cfg.security } }, log);
  const store = createSchemaStore(cfg.registryUrl, cfg.registryCredentials);
  const schemas = defaultSchemasDir();
  const telemetryTopic = topic('telemetry');
  const featuresTopic = topic('features');
  const telemetryCodec = await createAvroCodec<TelemetryRecord>(store, `${telemetryTopic}-value`, await loadSchemaFile(schemas, 'telemetry', 1));
  const featuresCodec = await createAvroCodec<FeatureRecord>(store, `${featuresTopic}-value`, await loadSchemaFile(schemas, 'features', 1));
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await runEndToEnd(runId, kafka, admin, telemetryCodec, featuresCodec, log);
  } finally {
    await admin.disconnect();
  }
}

async function runEndToEnd(runId: string, kafka: Kafka, admin: Admin, telemetryCodec: AvroCodec<TelemetryRecord>, featuresCodec: AvroCodec<FeatureRecord>, log: Logger): Promise<EndToEnd> {
  const topic = (name: string) => benchTopic(runId, name);
  const telemetryTopic = topic('telemetry');
  const featuresTopic = topic('features');
  await ensureTopics(admin, [{ topic: telemetryTopic }, { topic: topic('passthrough') }, { topic: topic('passthrough-tx') }], { partitions: PARTITIONS });

  const events = cfg.vehicles * cfg.seconds;
  say(`run ${runId}: producing ${fmt(events)} telemetry records (${fmt(cfg.vehicles)} vehicles x ${cfg.seconds} s at 1 Hz) to ${telemetryTopic} (${PARTITIONS} partitions)`);
  const produced = await produceTelemetry(kafka, telemetryCodec, telemetryTopic);
  say(`produced in ${fmt(produced.seconds, 1)} s (${fmt(produced.records / produced.seconds)} records/s, ${fmt(produced.bytes / produced.records)} bytes/record)`);
  const endOffsets = new Map((await admin.fetchTopicOffsets(telemetryTopic)).map((p) => [p.partition, BigInt(p.high)]));

  // Windows a partition's final watermark (the last second) closes, per vehicle; later ones stay open.
  const lastTs = (cfg.seconds - 1) * 1_000;
  const expectedWindows = cfg.vehicles * (Math.floor((lastTs - WINDOW.sizeMs - WINDOW.graceMs) / WINDOW.sizeMs) + 1);
  const make = (key: PipelineKey, round: number): Pipeline => {
    const id = `bench-${runId}-${key}-r${round}`;
    if (key === 'windowing') {
      // Wired as main.ts wires it, with a fresh group, transactional ids and output topics.
      const config: WindowingConfig = {
        service: 'windowing-bench',
        groupId: id,
        window: WINDOW,
        partitions: PARTITIONS,
        maxBytesPerPartition: FETCH_BYTES,
        transactionalIdPrefix: id,
        idleMs: 0,
        vehicleIdleMs: 0,
        topics: { telemetry: telemetryTopic, features: featuresTopic, dlq: topic('telemetry.dlq'), late: topic('telemetry.late'), floors: `${id}.floors` },
      };
      const w = createWindowing({ kafka, telemetryCodec, featuresCodec, log, config });
      const stat = (name: string) => w.stats()[name] ?? 0;
      return {
        start: () => w.start(),
        consumed: () => stat(METRICS.consumed),
        // Done when the last batch's transaction has committed: the commit metadata of every
        // partition records the end of the input as processed (commit-metadata.ts).
        async done() {
          if (stat(METRICS.consumed) < events || stat(METRICS.emitted) < expectedWindows) return false;
          const [offsets] = await admin.fetchOffsets({ groupId: id, topics: [telemetryTopic] });
          return [...endOffsets].every(([partition, end]) => {
            const meta = offsets?.partitions.find((p) => p.partition === partition)?.metadata;
            return decodeResume(meta).replayUntil >= end;
          });
        },
        outputRecords: () => stat(METRICS.emitted),
        anomalies: () =>
          [METRICS.late, METRICS.duplicates, METRICS.replayed, METRICS.deadLettered, METRICS.transactionsAborted]
            .filter((k) => stat(k) > 0)
            .map((k) => `${k.replace('pitwall_windowing_', '')}=${stat(k)}`),
        close: () => w.close(),
      };
    }
    const mode: NullMode = key === 'passThroughTx' ? 'tx' : key === 'passThrough' ? 'plain' : 'decodeOnly';
    return createPassThrough(kafka, telemetryCodec, {
      mode,
      groupId: id,
      input: telemetryTopic,
      output: topic(key === 'passThrough' ? 'passthrough' : 'passthrough-tx'),
      transactionalIdPrefix: id,
      events,
    });
  };

  // Rounds rotate the order, so no pipeline always runs first (cold JIT) or last.
  const keys = Object.keys(PIPELINES) as PipelineKey[];
  const runs: E2ERun[] = [];
  for (let round = 1; round <= cfg.rounds; round++) {
    const order = keys.map((_, i) => keys[(i + round - 1) % keys.length]!);
    for (const key of order) {
      const run = await measure(key, round, make(key, round), events);
      say(`round ${round}/${cfg.rounds} ${key}: ${fmt(run.eventsPerSecond)} events/s, ${fmt(run.outputRecords)} records out${run.anomalies.length ? ` (${run.anomalies.join(' ')})` : ''}`);
      runs.push(run);
    }
  }

  const summary = Object.fromEntries(
    keys.map((key) => {
      const mine = runs.filter((r) => r.pipeline === key);
      return [key, { name: PIPELINES[key], medianEventsPerSecond: median(mine.map((r) => r.eventsPerSecond)), rounds: mine.length }];
    }),
  ) as EndToEnd['summary'];
  return {
    runId,
    input: {
      topic: telemetryTopic,
      partitions: PARTITIONS,
      records: produced.records,
      vehicles: cfg.vehicles,
      eventSeconds: cfg.seconds,
      bytesPerRecord: produced.bytes / produced.records,
      produceSeconds: produced.seconds,
    },
    runs,
    summary,
    ratio: {
      windowingVsPassThroughTx: summary.windowing.medianEventsPerSecond / summary.passThroughTx.medianEventsPerSecond,
      windowingVsPassThrough: summary.windowing.medianEventsPerSecond / summary.passThrough.medianEventsPerSecond,
      windowingVsDecodeOnly: summary.windowing.medianEventsPerSecond / summary.decodeOnly.medianEventsPerSecond,
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** Issue 11's target for the state of one vehicle with one open window. */
const STATE_TARGET_BYTES = 2_048;

async function main(): Promise<void> {
  const parts = new Set(cfg.parts);
  const unknown = [...parts].filter((p) => !['state', 'core', 'record', 'e2e'].includes(p));
  if (unknown.length > 0 || parts.size === 0) {
    process.stderr.write(`[bench] BENCH_PARTS: expected a list of state, core, record, e2e, got ${cfg.parts.join(',')}\n`);
    process.exit(1);
  }
  if (parts.has('e2e')) await checkInfra();
  setTimeout(() => {
    process.stderr.write(`[bench] aborted: still running after ${cfg.totalTimeoutMs} ms (BENCH_TOTAL_TIMEOUT_MS)\n`);
    process.exit(1);
  }, cfg.totalTimeoutMs).unref();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  let stateBytes: StateBytes[] | undefined;
  if (parts.has('state')) {
    say('a) state bytes per vehicle (one open 10 s window, 10 events x 18 sensors)');
    stateBytes = [10_000, 100_000].map(measureStateBytes);
    printTable(
      `a) Partition state memory per vehicle (1 open window, 10 events, 18 sensors as Float64Array; target <= ${fmt(STATE_TARGET_BYTES)} B)`,
      ['vehicles', 'V8 heap B/vehicle', 'ArrayBuffer B/vehicle', 'total B/vehicle', 'total / target', 'total MiB'],
      stateBytes.map((r) => [
        fmt(r.vehicles),
        fmt(r.heapBytesPerVehicle),
        fmt(r.arrayBufferBytesPerVehicle),
        fmt(r.totalBytesPerVehicle),
        fmt(r.totalBytesPerVehicle / STATE_TARGET_BYTES, 2),
        fmt((r.totalBytesPerVehicle * r.vehicles) / 2 ** 20, 1),
      ]),
    );
  }

  let core: CoreRun[] | undefined;
  if (parts.has('core')) {
    say(`b) core throughput (${fmt(cfg.coreEvents)} events over 10,000 vehicles at 1 Hz)`);
    core = [
      coreThroughput(cfg.coreEvents, 10_000, 100, 10_000, 10_000),
      coreThroughput(cfg.coreEvents, 10_000, 1_000, 10_000, 10_000),
      coreThroughput(cfg.coreEvents, 10_000, 10_000, 10_000, 10_000),
      coreThroughput(cfg.coreEvents, 10_000, 1_000, 10_000, 5_000),
    ];
    printTable(
      'b) Core: createPartitionState add + drainClosed + commitPoint per batch (no I/O)',
      ['window', 'batch (events)', 'events', 'windows out', 'seconds', 'events/s', 'CPU s', 'events/CPU s'],
      core.map((r) => [r.window, fmt(r.batchSize), fmt(r.events), fmt(r.windowsEmitted), fmt(r.seconds, 2), fmt(r.eventsPerSecond), fmt(r.cpuSeconds, 2), fmt(r.eventsPerCpuSecond)]),
    );
  }

  let records: RecordCost[] | undefined;
  if (parts.has('record')) {
    say('d) a closed window as a vehicle.features record (build + Avro encode)');
    records = await recordCosts();
    const base = records[0]!.microsPerRecord;
    printTable(
      'd) Features record per closed window: build + Avro encode (at 0.1 Hz one per reading)',
      ['way', 'µs/record', 'bytes', 'speed-up'],
      records.map((r) => [r.way, fmt(r.microsPerRecord, 2), fmt(r.bytes), fmt(base / r.microsPerRecord, 1)]),
    );
  }

  let e2e: EndToEnd | undefined;
  if (parts.has('e2e')) {
    say(`c) end to end on the local broker (${cfg.rounds} rounds)`);
    const run = await endToEnd();
    e2e = run;
    const keys = Object.keys(PIPELINES) as PipelineKey[];
    printTable(
      `c) End to end: ${fmt(run.input.records)} Avro records (${fmt(run.input.vehicles)} vehicles x ${run.input.eventSeconds} s), ${PARTITIONS} partitions, one consumer, 10 s tumbling windows`,
      ['pipeline', 'median events/s', 'per round events/s', 'steady s (median)', 'wall s incl. join (median)', 'records out', 'anomalies'],
      keys.map((key) => {
        const mine = run.runs.filter((r) => r.pipeline === key);
        return [
          PIPELINES[key],
          fmt(run.summary[key].medianEventsPerSecond),
          mine.map((r) => fmt(r.eventsPerSecond)).join(' / '),
          fmt(median(mine.map((r) => r.steadySeconds)), 2),
          fmt(median(mine.map((r) => r.wallSeconds)), 2),
          fmt(mine[0]?.outputRecords ?? 0),
          mine.flatMap((r) => r.anomalies).join(' ') || 'none',
        ];
      }),
    );
    printTable(
      'c) Ratio of median throughputs',
      ['windowing / null pipeline', 'ratio'],
      [
        ['vs transactional pass-through (same settings)', fmt(run.ratio.windowingVsPassThroughTx, 2)],
        ['vs idempotent acks=all pass-through', fmt(run.ratio.windowingVsPassThrough, 2)],
        ['vs decode-only (offsets in a transaction, no output)', fmt(run.ratio.windowingVsDecodeOnly, 2)],
      ],
    );
  }

  const report = {
    benchmark: 'windowing',
    startedAt,
    durationSeconds: (performance.now() - t0) / 1000,
    environment: { node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', brokers: cfg.brokers },
    parts: [...parts],
    window: WINDOW,
    stateTargetBytes: STATE_TARGET_BYTES,
    ...(stateBytes ? { stateBytes } : {}),
    ...(core ? { core } : {}),
    ...(records ? { records } : {}),
    ...(e2e ? { endToEnd: e2e } : {}),
  };
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(RESULTS_FILE, JSON.stringify(report, null, 2) + '\n');
  say(`done in ${fmt(report.durationSeconds, 1)} s; results written to ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
