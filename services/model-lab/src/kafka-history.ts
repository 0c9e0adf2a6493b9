/**
 * Reads a fixed range of a Kafka topic, side-effect free: used by `npm run replay` (features) and
 * `npm run train -- --from-kafka` (telemetry).
 *
 * Range: per partition [from, to) in offsets. A bound is one of
 *   earliest | latest                  the log start / the end offset at the moment the range is resolved
 *   2026-01-01T10:00:00Z (ISO 8601)    per partition, the first offset whose record timestamp is >= that time
 *   ts:<epoch ms>                      the same, in epoch milliseconds
 *   offset:<n>                         offset n on every partition
 *   <p>:<n>,<p>:<n>                    offsets per partition; only the listed partitions are read
 * Times map to offsets through the broker's timestamp index (ListOffsets), so a time range is a
 * contiguous offset range; records inside it are not filtered again by timestamp. `to` is clamped to
 * the end offset when the range is resolved, so a live topic still gives a fixed range.
 *
 * Reading: a kafkajs consumer in a consumer group of its own (random id, used once), autoCommit off
 * (with it on, kafkajs' seek itself commits), seeks every partition to its `from` (its position, after a restart) right after
 * joining, and stops once every partition's position passed `to` (control records and aborted
 * transactions count as passed: kafkajs reports them in END_BATCH_PROCESS). Nothing is produced,
 * nothing committed, no topic created (allowAutoTopicCreation off, the topic must exist); the empty
 * group is deleted afterwards. read_committed, like every Pitwall consumer.
 *
 * Decoding: createReadOnlyDecoder resolves each record's writer schema by id from the registry into
 * the reader schema, without registering anything (createAvroCodec would register a subject).
 */
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import {
  configReader,
  createKafka,
  createLogger,
  deferred,
  InvalidInputError,
  readCommonConfig,
  runFromPositions,
  type Env,
  type KafkaSecurity,
  type SchemaStore,
  type SeekTarget,
} from '@pitwall/common';

export type OffsetBound = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'time'; ts: number } | { kind: 'offset'; offset: bigint } | { kind: 'partitions'; offsets: ReadonlyMap<number, bigint> };

/** Parses a bound (see the module comment); throws RangeError quoting it. */
export function parseBound(text: string): OffsetBound {
  const s = text.trim();
  if (s === 'earliest' || s === 'beginning') return { kind: 'earliest' };
  if (s === 'latest' || s === 'end') return { kind: 'latest' };
  let m = /^ts:(\d+)$/.exec(s);
  if (m) return { kind: 'time', ts: Number(m[1]) };
  m = /^offset:(\d+)$/.exec(s);
  if (m) return { kind: 'offset', offset: BigInt(m[1]!) };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(s)) {
    const offsets = new Map<number, bigint>();
    for (const item of s.split(',')) {
      const [p, o] = item.split(':') as [string, string];
      if (offsets.has(Number(p))) throw new RangeError(`"${text}": partition ${p} given twice`);
      offsets.set(Number(p), BigInt(o));
    }
    return { kind: 'partitions', offsets };
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const ts = Date.parse(s);
    if (Number.isFinite(ts)) return { kind: 'time', ts };
  }
  throw new RangeError(`"${text}": expected earliest, latest, an ISO time (2026-01-01T10:00:00Z), ts:<epoch ms>, offset:<n> or <partition>:<offset>,...`);
}

/** What the broker says about one partition. */
export interface PartitionWatermarks {
  partition: number;
  /** Log start offset. */
  low: bigint;
  /** End offset (next offset to be written). */
  high: bigint;
}

export interface PartitionRange {
  partition: number;
  /** First offset read. */
  fromOffset: bigint;
  /** First offset not read. */
  toOffset: bigint;
}

export interface TopicRange {
  topic: string;
  /** As given, for the record. */
  from: string;
  to: string;
  /** Partitions read, ascending; an empty range (from >= to) is kept with nothing to read. */
  partitions: PartitionRange[];
}

/**
 * Offsets of both bounds per partition. `timeOffsets(ts)` gives per partition the first offset with
 * timestamp >= ts (or the end offset when there is none). Pure apart from that lookup.
 */
export async function resolveBounds(
  watermarks: readonly PartitionWatermarks[],
  from: OffsetBound,
  to: OffsetBound,
  timeOffsets: (ts: number) => Promise<ReadonlyMap<number, bigint>>,
): Promise<PartitionRange[]> {
  const known = new Set(watermarks.map((w) => w.partition));
  for (const b of [from, to]) {
    if (b.kind !== 'partitions') continue;
    for (const p of b.offsets.keys()) if (!known.has(p)) throw new RangeError(`partition ${p} does not exist (the topic has ${[...known].sort((a, c) => a - c).join(', ')})`);
  }
  const at = async (b: OffsetBound): Promise<(w: PartitionWatermarks) => bigint | undefined> => {
    switch (b.kind) {
      case 'earliest':
        return (w) => w.low;
      case 'latest':
        return (w) => w.high;
      case 'offset':
        return () => b.offset;
      case 'partitions':
        return (w) => b.offsets.get(w.partition);
      case 'time': {
        const offsets = await timeOffsets(b.ts);
        return (w) => offsets.get(w.partition) ?? w.high;
      }
    }
  };
  const fromAt = await at(from);
  const toAt = await at(to);
  const out: PartitionRange[] = [];
  for (const w of [...watermarks].sort((a, b) => a.partition - b.partition)) {
    const f = fromAt(w);
    const t = toAt(w);
    if (f === undefined || t === undefined) continue;
    const fromOffset = f < w.low ? w.low : f > w.high ? w.high : f;
    const toOffset = t > w.high ? w.high : t < fromOffset ? fromOffset : t;
    out.push({ partition: w.partition, fromOffset, toOffset });
  }
  return out;
}

/** Resolves a range against the broker. Throws when the topic does not exist. */
export async function resolveTopicRange(admin: Admin, topic: string, from: string, to: string): Promise<TopicRange> {
  const fromBound = parseBound(from);
  const toBound = parseBound(to);
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) throw new RangeError(`topic ${topic} does not exist`);
  const offsets = await admin.fetchTopicOffsets(topic);
  const watermarks = offsets.map((o) => ({ partition: o.partition, low: BigInt(o.low), high: BigInt(o.high) }));
  const partitions = await resolveBounds(watermarks, fromBound, toBound, async (ts) => {
    const res = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
    return new Map(res.map((r) => [r.partition, BigInt(r.offset)]));
  });
  return { topic, from, to, partitions };
}

/** One record read, with where it came from. */
export interface HistoryRecord {
  partition: number;
  offset: string;
  /** Record timestamp (epoch ms) as stored by Kafka. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaMessage['headers'];
}

export interface PartitionRead extends PartitionRange {
  records: number;
  /** Smallest and greatest record timestamp read; null when the partition gave no records. */
  firstTimestamp: number | null;
  lastTimestamp: number | null;
}

export interface ReadResult {
  range: TopicRange;
  /** In partition order, then offset order. */
  records: HistoryRecord[];
  partitions: PartitionRead[];
}

export interface ReadOptions {
  /** Give up when the range is not fully read after this long (default 120 s). */
  timeoutMs?: number;
  /** Consumer group id; default pitwall-history-<random uuid>. Never committed to. */
  groupId?: string;
  /** Delete the (empty) group afterwards; default true. */
  deleteGroup?: boolean;
}

/** Reads exactly the records of `range` (see the module comment). */
export async function readTopicRange(kafka: Kafka, range: TopicRange, opts: ReadOptions = {}): Promise<ReadResult> {
  const pending = range.partitions.filter((p) => p.toOffset > p.fromOffset);
  const byPartition = new Map<number, HistoryRecord[]>(range.partitions.map((p) => [p.partition, []]));
  const result = (): ReadResult => ({
    range,
    records: range.partitions.flatMap((p) => byPartition.get(p.partition)!),
    partitions: range.partitions.map((p) => {
      const recs = byPartition.get(p.partition)!;
      let first: number | null = null;
      let last: number | null = null;
      for (const r of recs) {
        if (first === null || r.timestamp < first) first = r.timestamp;
        if (last === null || r.timestamp > last) last = r.timestamp;
      }
      return { ...p, records: recs.length, firstTimestamp: first, lastTimestamp: last };
    }),
  });
  if (pending.length === 0) return result();
  const want = new Map(pending.map((p) => [p.partition, p]));
  // Next offset expected per partition: records below it were taken already (no duplicates).
  const position = new Map(pending.map((p) => [p.partition, p.fromOffset]));
  const { promise: finished, resolve: finish } = deferred();
  const done = (): boolean => pending.every((p) => position.get(p.partition)! >= p.toOffset);
  const advance = (partition: number, next: bigint): void => {
    const cur = position.get(partition);
    if (cur !== undefined && next > cur) position.set(partition, next);
    if (done()) finish();
  };
  const groupId = opts.groupId ?? `pitwall-history-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, readUncommitted: false, maxWaitTimeInMs: 500 });
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    // Batches holding only control records or aborted data never reach eachBatch; their end still counts.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { topic, partition, lastOffset } = e.payload as { topic: string; partition: number; lastOffset: string | null };
      if (topic === range.topic && lastOffset !== null && want.has(partition)) advance(partition, BigInt(lastOffset) + 1n);
    });
    await consumer.subscribe({ topics: [range.topic], fromBeginning: false });
    // Every join (a restarted consumer included) resumes each partition at its position.
    const positions = (): SeekTarget[] => pending.map((p) => ({ topic: range.topic, partition: p.partition, offset: position.get(p.partition)!.toString() }));
    await runFromPositions(consumer, positions, {
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const p = want.get(batch.partition);
        if (!p) return;
        const list = byPartition.get(batch.partition)!;
        for (const m of batch.messages) {
          const off = BigInt(m.offset);
          if (off < position.get(batch.partition)! || off < p.fromOffset || off >= p.toOffset) continue;
          list.push({ partition: batch.partition, offset: m.offset, timestamp: Number(m.timestamp), key: m.key, value: m.value, headers: m.headers });
          position.set(batch.partition, off + 1n);
        }
      },
    });
    const timeoutMs = opts.timeoutMs ?? 120_000;
    await Promise.race([
      finished,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const left = pending.filter((p) => position.get(p.partition)! < p.toOffset).map((p) => `${p.partition}: at ${position.get(p.partition)} of [${p.fromOffset}, ${p.toOffset})`);
          reject(new Error(`reading ${range.topic} did not finish within ${timeoutMs} ms (partition ${left.join('; ')})`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    await consumer.disconnect().catch(() => {});
    if (opts.deleteGroup ?? true) await deleteGroupQuietly(kafka, groupId);
  }
  return result();
}

/** The reader's group holds no offsets; deleting it just removes the empty group right away. */
async function deleteGroupQuietly(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch {
    // Already gone, or the broker refused: Kafka removes empty groups without offsets by itself.
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export interface ReadOnlyDecoder<T> {
  decode(buf: Buffer): Promise<T>;
}

/**
 * Decodes Confluent-framed Avro (magic 0, 4-byte schema id, body) written with any schema the
 * registry knows, into `readerSchema`. Registers nothing.
 */
export function createReadOnlyDecoder<T>(store: Pick<SchemaStore, 'getSchema'>, readerSchema: avro.Schema): ReadOnlyDecoder<T> {
  // A fresh options object per call: avsc keeps the named types it saw in it (a shared one reports
  // "duplicate type name" on the second schema).
  const opts = (): avro.ForSchemaOptions => ({ wrapUnions: false }) as avro.ForSchemaOptions;
  const reader = avro.Type.forSchema(readerSchema, opts());
  const resolvers = new Map<number, Promise<avro.Resolver>>();
  const resolverFor = (id: number): Promise<avro.Resolver> => {
    let r = resolvers.get(id);
    if (!r) {
      r = store.getSchema(id).then((writer) => reader.createResolver(avro.Type.forSchema(writer, opts())));
      r.catch(() => resolvers.delete(id));
      resolvers.set(id, r);
    }
    return r;
  };
  return {
    async decode(buf) {
      if (buf.length < 5 || buf.readUInt8(0) !== 0) throw new InvalidInputError('avro.framing', `not a Confluent-framed Avro message (${buf.length} bytes)`);
      const resolver = await resolverFor(buf.readUInt32BE(1));
      try {
        return reader.fromBuffer(buf.subarray(5), resolver) as T;
      } catch (err) {
        throw new InvalidInputError('avro.decode', `cannot decode record: ${(err as Error).message}`);
      }
    },
  };
}

/** A TopicRange/PartitionRead as plain JSON (offsets as strings), for metadata and output. */
export function describeRead(r: Pick<ReadResult, 'range' | 'partitions'>): {
  topic: string;
  from: string;
  to: string;
  records: number;
  fromTs: number | null;
  toTs: number | null;
  partitions: Array<{ partition: number; fromOffset: string; toOffset: string; records: number; firstTimestamp: number | null; lastTimestamp: number | null }>;
} {
  const first = r.partitions.map((p) => p.firstTimestamp).filter((x): x is number => x !== null);
  const last = r.partitions.map((p) => p.lastTimestamp).filter((x): x is number => x !== null);
  return {
    topic: r.range.topic,
    from: r.range.from,
    to: r.range.to,
    records: r.partitions.reduce((a, p) => a + p.records, 0),
    fromTs: first.length ? Math.min(...first) : null,
    toTs: last.length ? Math.max(...last) : null,
    partitions: r.partitions.map((p) => ({
      partition: p.partition,
      fromOffset: p.fromOffset.toString(),
      toOffset: p.toOffset.toString(),
      records: p.records,
      firstTimestamp: p.firstTimestamp,
      lastTimestamp: p.lastTimestamp,
    })),
  };
}

/** Brokers and registry of a command line: flags first, then KAFKA_BROKERS / SCHEMA_REGISTRY_URL, then the local defaults. */
export function readHistoryConnection(
  env: Env,
  flags: { brokers?: string | undefined; registry?: string | undefined; topicDefault: 'features' | 'telemetry' },
): { brokers: string[]; registryUrl: string; defaultTopic: string; security: KafkaSecurity } {
  const c = configReader(env);
  const common = readCommonConfig(c, 'history');
  const config = c.done({
    brokers: flags.brokers
      ? flags.brokers
          .split(',')
          .map((b) => b.trim())
          .filter(Boolean)
      : common.kafka.brokers,
    registryUrl: flags.registry ?? common.registryUrl,
    defaultTopic: common.topics[flags.topicDefault],
    security: common.kafka.security,
  });
  return { ...config, brokers: [...config.brokers] };
}

/** A kafkajs client for a command line: warnings and errors of kafkajs go to stderr as JSON lines. */
export function historyKafka(brokers: string[], clientId: string, security?: KafkaSecurity): Kafka {
  const log = createLogger({ service: clientId, level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  return createKafka({ kafka: { brokers, clientId, security } }, log);
}
