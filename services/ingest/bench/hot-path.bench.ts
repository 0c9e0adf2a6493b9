/**
 * Ingest's per-reading CPU, with no broker: `npm run bench -w @pitwall/ingest` after a build (the
 * root `npm run bench` runs it with the others).
 *
 *   a) handleTelemetry: topic, JSON, validation and Avro encoding of one reading, the work ingest
 *      does per MQTT message before the Kafka send; µs per reading and readings per CPU second;
 *   b) partitioning one keyed record: kafkajs's DefaultPartitioner against common's
 *      javaCompatiblePartitioner (the same partitions, 32-bit arithmetic), and their ratio;
 *   c) grouping a send's records by partition (BENCH_SEND, 2,000 records over 3 partitions, as
 *      ingest sends): kafkajs 2.2.4's own function (quadratic) against common's
 *      groupMessagesPerPartition (one pass), which the services' kafkajs uses (kafkajs-grouping.ts).
 *
 * The readings are BENCH_READINGS (200,000) payloads of BENCH_VEHICLES (2,000) cars, every sensor
 * in its plausible range, as a car sends them. Each measurement runs BENCH_ROUNDS (5) times after a
 * warm-up and reports the median. Writes bench-results/ingest-hot-path.json at the repository root.
 * A measurement, not a test: it never fails on the numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Partitioners } from 'kafkajs';
import {
  createAvroCodec,
  defaultSchemasDir,
  groupMessagesPerPartition,
  javaCompatiblePartitioner,
  keyPartition,
  loadSchemaFile,
  SENSORS,
  type SchemaStore,
  type TelemetryRecord,
  repoRoot,
} from '@pitwall/common';
import { kafkajsOwnGrouping } from '@pitwall/common/testing';
import { handleTelemetry } from '../src/handlers/telemetry.js';

const REPO = repoRoot(import.meta.url);
const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
};
const READINGS = int('BENCH_READINGS', 200_000);
const VEHICLES = int('BENCH_VEHICLES', 2000);
const ROUNDS = int('BENCH_ROUNDS', 5);
const SEND = int('BENCH_SEND', 2000);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median over the rounds of CPU µs and wall µs per item of `run` (which handles `items` items). */
function measure(items: number, run: () => void): { cpuUsPerItem: number; wallUsPerItem: number } {
  run(); // warm-up: JIT, inline caches
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    run();
    const w = performance.now() - w0;
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / items);
    wall.push((w * 1000) / items);
  }
  return { cpuUsPerItem: median(cpu), wallUsPerItem: median(wall) };
}

async function main(): Promise<void> {
  const now = Date.now();
  // The service's codec, over a store that gives every schema id 1 (no registry needed).
  const store: SchemaStore = {
    register: () => Promise.resolve(1),
    lookup: () => Promise.resolve(1),
    setCompatibility: () => Promise.resolve(),
    getSchema: () => Promise.reject(new Error('not used')),
  };
  const codec = await createAvroCodec<TelemetryRecord>(store, 'vehicle.telemetry-value', await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  const deps = { service: 'ingest', codec, topics: { telemetry: 'vehicle.telemetry', dlq: 'dlq' }, limits: { maxPayloadBytes: 8192, maxFutureSkewMs: 120_000 } };
  let seed = 7;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const ids = Array.from({ length: VEHICLES }, (_, i) => `car-${String(i).padStart(5, '0')}`);
  const messages = Array.from({ length: READINGS }, (_, i) => {
    const id = ids[i % VEHICLES]!;
    const body: Record<string, unknown> = { ts: now - 1000 + (i % 1000), ignition_on: true };
    for (const s of SENSORS) {
      const [lo, hi] = s.plausible;
      const v = lo + (hi - lo) * rand();
      body[s.name] = s.kind === 'int' ? Math.round(v) : Math.round(v * 1000) / 1000;
    }
    return { topic: `vehicles/${id}/telemetry`, payload: Buffer.from(JSON.stringify(body)) };
  });

  let kept = 0;
  const handle = measure(READINGS, () => {
    for (const m of messages) if (handleTelemetry(deps, m.topic, m.payload, now).kind === 'record') kept++;
  });
  if (kept === 0) throw new Error('no reading was valid: the benchmark measured dead letters');

  const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  const keyed = ids.map((key) => ({ key, value: null }));
  const partitionRun = (partitioner: ReturnType<typeof javaCompatiblePartitioner>) => () => {
    for (let r = 0; r < READINGS / VEHICLES; r++) for (const message of keyed) partitioner({ topic: 'vehicle.telemetry', partitionMetadata, message });
  };
  const theirs = measure(READINGS, partitionRun(Partitioners.DefaultPartitioner()));
  const ours = measure(READINGS, partitionRun(javaCompatiblePartitioner()));

  const sendPartitions = partitionMetadata.slice(0, 3);
  // As the services' partitioner places a keyed record.
  const partitioner = ({ message }: { message: { key: string } }): number => keyPartition(message.key, sendPartitions.length);
  const sends = Array.from({ length: Math.ceil(READINGS / SEND) }, (_, s) => keyed.slice(0, SEND).map((m, i) => ({ ...m, key: ids[(s * SEND + i) % VEHICLES]! })));
  const groupRun = (group: typeof groupMessagesPerPartition) => () => {
    for (const messages of sends) group({ topic: 'vehicle.telemetry', partitionMetadata: sendPartitions, messages, partitioner });
  };
  const groupTheirs = measure(sends.length * SEND, groupRun(kafkajsOwnGrouping()));
  const groupOurs = measure(sends.length * SEND, groupRun(groupMessagesPerPartition));

  const rows = [
    ['handleTelemetry (JSON, validation, Avro)', handle],
    ['partition: kafkajs DefaultPartitioner', theirs],
    ['partition: javaCompatiblePartitioner', ours],
    [`group ${SEND.toLocaleString('en-US')} by partition: kafkajs`, groupTheirs],
    [`group ${SEND.toLocaleString('en-US')} by partition: common`, groupOurs],
  ] as const;
  console.log(
    `ingest hot path: ${READINGS.toLocaleString('en-US')} readings of ${VEHICLES.toLocaleString('en-US')} cars, median of ${ROUNDS} rounds, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`,
  );
  console.log('step                                        CPU µs/reading   readings per CPU second');
  for (const [name, m] of rows)
    console.log(
      `${name.padEnd(44)}${m.cpuUsPerItem.toFixed(2).padStart(14)}   ${Math.round(1e6 / m.cpuUsPerItem)
        .toLocaleString('en-US')
        .padStart(22)}`,
    );
  const ratio = theirs.cpuUsPerItem / ours.cpuUsPerItem;
  console.log(`partitioner speed-up (kafkajs / ours): ${ratio.toFixed(1)}x`);
  const groupRatio = groupTheirs.cpuUsPerItem / groupOurs.cpuUsPerItem;
  console.log(`grouping speed-up (kafkajs / ours): ${groupRatio.toFixed(1)}x`);

  const out = path.join(REPO, 'bench-results', 'ingest-hot-path.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        readings: READINGS,
        vehicles: VEHICLES,
        rounds: ROUNDS,
        handleTelemetry: handle,
        partitioner: { kafkajs: theirs, ours, ratio },
        grouping: { send: SEND, partitions: 3, kafkajs: groupTheirs, ours: groupOurs, ratio: groupRatio },
      },
      null,
      1,
    ),
  );
  console.log(`written to ${out}`);
}

main().catch((err: unknown) => {
  console.error('ingest hot-path benchmark failed:', err);
  process.exit(1);
});
