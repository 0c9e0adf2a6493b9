/**
 * Windowing: vehicle.telemetry -> per-vehicle event-time windows -> vehicle.features.
 *
 * Guarantee: exactly-once for consumers reading with isolation read_committed (kafkajs's default).
 * Each fetched batch of an input partition is one Kafka transaction: the features of the windows it
 * closed, its late and dead-lettered events, and the partition's consumer offset (with the resume
 * metadata of partition-state.ts) commit together or not at all. Every input partition has its own
 * transactional id, so when a partition moves to another instance (rebalance, or a restart after
 * kill -9) the new owner's producer fences the old one and aborts its open transaction. Open
 * windows are rebuilt from the committed offset, which is exact (see partition-state.ts).
 *
 * Event time is per vehicle (partition-state.ts): a car's windows close by its own clock, and by
 * arrival time once the car falls silent; the floors those closes leave are written, in the same
 * transaction, to a compacted changelog with one partition per input partition, and read back after
 * every group join, after fencing the previous owner.
 *
 * Quiet partitions: arrival time only moves with records, so when a partition this instance owns
 * has open windows, no new record for `idleMs` (wall clock) and nothing left unread, windowing
 * appends an idle marker to that input partition (no value, headers pitwall.control=idle and
 * pitwall.control.time=<wall ms>). Consuming the marker advances the partition's arrival clock to
 * that time, closing the cars silent for the vehicle idle time. The decision is thereby in the log,
 * so a replay after a crash makes the same one at the same place and exactly-once holds. Other
 * readers of the telemetry topic skip records carrying a pitwall.control header.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, Message, PartitionOffset, Producer } from 'kafkajs';
import {
  batchExtent,
  createBoundedSender,
  createMetricsRegistry,
  createPartitionProducers,
  runConsumer,
  sendOffsetsInTransaction,
  createReadiness,
  secondsSince,
  watchConsumer,
  watchConsumerLag,
  type Readiness,
  readSendBudget,
  DEFAULT_MAX_BATCH_BYTES,
  PitwallError,
  startTopicReader,
  undecodableRecord,
  ensureTopics,
  featureFields,
  SENSOR_NAMES,
  windowStartsFor,
  type AvroCodec,
  type Logger,
  type Registry,
  type Service,
  type TelemetryRecord,
  type WindowDef,
} from '@pitwall/common';
import { decodeResume, encodeResume } from './commit-metadata.js';
import { createWindowingMetrics, METRICS } from './metrics.js';
import { type ClosedWindow, type Resume } from './partition-state.js';
import { createWindowSetState, type WindowSetState } from './window-set.js';

export type FeatureRecord = Record<string, number | string>;

export interface WindowingConfig {
  service: string;
  groupId: string;
  /** The first window definition: named on the late topic. */
  window: WindowDef;
  /**
   * Every window definition computed (window-set.ts); default [window]. With more than one, feature
   * records carry their definition (features v2: window_size_ms, window_advance_ms) and the features
   * codec must write v2; with one they are v1, byte for byte as before.
   */
  windows?: readonly WindowDef[];
  partitions: number;
  /** Fetch size per partition; small values make batches small (tests use it to stress resumption). */
  maxBytesPerPartition: number;
  /**
   * A fetch returns once it has this many bytes over its partitions or after fetchMaxWaitMs. Every
   * fetched batch is a transaction, so this bounds their rate at light load (default 1: at once).
   */
  fetchMinBytes?: number;
  /** Longest wait of a fetch for fetchMinBytes (default 250 ms): added to a window's emit latency at light load. */
  fetchMaxWaitMs?: number;
  /** Close a partition's open windows after this long without records (wall clock); 0: never. */
  idleMs: number;
  /** Close a vehicle's windows once it has sent nothing for this long (partition arrival time); 0: never. */
  vehicleIdleMs: number;
  /** Transactional ids are `${prefix}-${input topic}-${partition}`. */
  transactionalIdPrefix: string;
  /** Most bytes per send (KAFKA_MAX_BATCH_BYTES; lowered to the topics' max.message.bytes at start). */
  maxBatchBytes?: number;
  /** floors: compacted changelog of per-vehicle floors (partition-state.ts), one partition per input partition. */
  topics: { telemetry: string; features: string; dlq: string; late: string; floors: string };
}

export interface WindowingDeps {
  kafka: Kafka;
  telemetryCodec: AvroCodec<TelemetryRecord>;
  featuresCodec: AvroCodec<FeatureRecord>;
  log: Logger;
  config: WindowingConfig;
  /** Readiness checks (main.ts shares it with /readyz); one of its own when absent. */
  readiness?: Readiness;
  /** Where counters, histograms and lag gauges are registered (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export type Windowing = Service;

/** The vehicle.features record of a closed window: v1, or v2 naming its definition when `def` is given. */
export function toFeatureRecord(w: ClosedWindow, def?: WindowDef): FeatureRecord {
  const record: FeatureRecord = featureFields(w.features, { vehicle_id: w.vehicleId, window_start: w.start, window_end: w.end, event_count: w.eventCount } as FeatureRecord);
  if (def) {
    record.window_size_ms = def.sizeMs;
    record.window_advance_ms = def.advanceMs;
  }
  return record;
}

/** Headers of a record on the late topic (raw telemetry value and key are kept). */
export const LATE_HEADER = Object.freeze({
  reason: 'pitwall.late.reason',
  windowStart: 'pitwall.late.window_start',
  windowEnd: 'pitwall.late.window_end',
  watermark: 'pitwall.late.watermark',
  eventTs: 'pitwall.late.event_ts',
});

/** Header marking a control record on the telemetry topic (not a reading). */
export const CONTROL_HEADER = 'pitwall.control';

export function createWindowing(deps: WindowingDeps): Windowing {
  const { config, log } = deps;
  const metrics = createWindowingMetrics(deps.metrics ?? createMetricsRegistry({ processMetrics: false }));
  const { counters } = metrics;
  const windows = config.windows ?? [config.window];
  // Feature records name their definition only when there is more than one (features v2).
  const namesDefinition = windows.length > 1;
  const states = new Map<number, WindowSetState>();
  // What this instance last committed per partition: a restart of the partition after a failed
  // transaction resumes from here without waiting for the commit to become visible to fetches.
  const committed = new Map<number, { offset: bigint; resume: Resume }>();
  const producers = createPartitionProducers(deps.kafka, (partition) => `${config.transactionalIdPrefix}-${config.topics.telemetry}-${partition}`);
  // A batch closing thousands of windows is sent in chunks under the broker's limit, in its one transaction.
  const sender = createBoundedSender({ maxBytes: config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, service: config.service, dlqTopic: config.topics.dlq, log });
  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let markers: Producer | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const readiness = deps.readiness ?? createReadiness({ log });
  readiness.set('windowing', false, 'starting');
  const owned = new Set<number>();
  const lastActivity = new Map<number, number>();
  // Per partition, the vehicles' floors as committed; loaded from the changelog after each join.
  const committedFloors = new Map<number, Map<string, number>>();
  let generation = 0;
  let floorsLoad: Promise<void> | undefined;

  const checkIdle = async (): Promise<void> => {
    const now = Date.now();
    const quiet = [...owned].filter((partition) => {
      const state = states.get(partition);
      return state !== undefined && state.openWindows() > 0 && now - (lastActivity.get(partition) ?? now) >= config.idleMs;
    });
    if (quiet.length === 0) return;
    // Quiet means nothing left to read, not a consumer that could not fetch (a Kafka outage, a
    // restart catching up): a marker then would close windows whose readings wait in the log.
    const ends = new Map((await admin!.fetchTopicOffsets(config.topics.telemetry)).map((o) => [o.partition, BigInt(o.high)]));
    for (const partition of quiet) {
      const state = states.get(partition)!;
      const read = committed.get(partition)?.resume.replayUntil;
      if (read === undefined || (ends.get(partition) ?? 0n) > read) continue;
      lastActivity.set(partition, now);
      await markers!.send({
        topic: config.topics.telemetry,
        acks: -1,
        messages: [{ partition, key: null, value: null, headers: { [CONTROL_HEADER]: 'idle', 'pitwall.control.time': String(now) } }],
      });
      counters.inc(METRICS.idleMarkers);
      log.info('partition idle: marker appended to close its open windows', { partition, openWindows: state.openWindows() });
    }
  };

  /**
   * Fences the previous owners of `partitions` (their open transactions abort), then reads their
   * floors from the changelog, read_committed, so they are exactly the floors of the last commit.
   */
  const loadFloors = async (partitions: number[], gen: number): Promise<void> => {
    await Promise.all(partitions.map((p) => producers.get(p)));
    const fresh = new Map(partitions.map((p) => [p, new Map<string, number>()]));
    const reader = await startTopicReader(deps.kafka, {
      topic: config.topics.floors,
      groupIdPrefix: `${config.groupId}.floors`,
      log,
      timeoutMs: 120_000,
      onBatch: (batch) => {
        const floors = fresh.get(batch.partition);
        if (!floors) return;
        for (const m of batch.messages) {
          const vehicleId = m.key?.toString();
          if (vehicleId === undefined) continue;
          const floor = m.value === null ? NaN : Number(m.value.toString());
          if (Number.isFinite(floor)) floors.set(vehicleId, floor);
          else floors.delete(vehicleId);
        }
      },
    });
    try {
      await reader.caughtUp;
    } finally {
      await reader.stop();
    }
    if (gen !== generation) return;
    for (const [p, floors] of fresh) committedFloors.set(p, floors);
    log.info('vehicle floors loaded', { partitions, floors: [...fresh.values()].reduce((n, f) => n + f.size, 0) });
  };

  const stateFor = async (partition: number): Promise<WindowSetState> => {
    let state = states.get(partition);
    if (state) return state;
    if (!committedFloors.has(partition)) {
      await floorsLoad?.catch(() => {});
      if (!committedFloors.has(partition)) await loadFloors([partition], generation);
      if (!committedFloors.has(partition)) throw new PitwallError('windowing.rebalanced', `partition ${partition} was reassigned while its floors loaded`, { retriable: true });
    }
    let resume = committed.get(partition)?.resume;
    if (!resume) {
      const [offsets] = await admin!.fetchOffsets({ groupId: config.groupId, topics: [config.topics.telemetry] });
      resume = decodeResume(offsets?.partitions.find((p) => p.partition === partition)?.metadata);
    }
    const floors = committedFloors.get(partition)!;
    state = createWindowSetState(windows, { resume, floors, vehicleIdleMs: config.vehicleIdleMs });
    states.set(partition, state);
    log.info('partition state initialised', { partition, clock: resume.clock, replayUntil: resume.replayUntil.toString(), floors: floors.size });
    return state;
  };

  const producerFor = (partition: number): Promise<Producer> => producers.get(partition);
  const dropProducer = (partition: number): void => producers.drop(partition);

  // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs passes closures, meant to be destructured
  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const { partition } = batch;
    const state = await stateFor(partition);
    const deadLetters: Message[] = [];
    const late: Message[] = [];
    let next: bigint | undefined;
    lastActivity.set(partition, Date.now());
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      next = BigInt(message.offset) + 1n;
      if (message.headers?.[CONTROL_HEADER] !== undefined) {
        if (String(message.headers[CONTROL_HEADER]) === 'idle') {
          const time = Number(message.headers['pitwall.control.time']?.toString());
          const offset = BigInt(message.offset);
          // A marker without a time (older versions) closes everything, as it used to.
          counters.inc(METRICS.idleClosed, Number.isFinite(time) ? state.idleTick(time, offset) : state.closeAll(offset));
        }
        continue;
      }
      let rec: TelemetryRecord;
      try {
        if (!message.value) throw new Error('empty message value');
        rec = await deps.telemetryCodec.decode(message.value);
      } catch (err) {
        counters.inc(METRICS.deadLettered);
        deadLetters.push(undecodableRecord(config.service, err, message, { topic: batch.topic, partition: partition }));
        continue;
      }
      const values = new Float64Array(SENSOR_NAMES.length);
      SENSOR_NAMES.forEach((name, i) => (values[i] = rec[name] as number));
      const vehicleTime = state.vehicleTime(rec.vehicle_id);
      const result = state.add(rec.vehicle_id, rec.ts, values, BigInt(message.offset), rec.received_at as number);
      counters.inc(METRICS.consumed);
      if (rec.ignition_on === false) counters.inc(METRICS.ignitionClosed, state.closeVehicle(rec.vehicle_id, BigInt(message.offset)));
      if (result === 'duplicate') counters.inc(METRICS.duplicates);
      else if (result === 'replayed') counters.inc(METRICS.replayed);
      else if (result === 'late') {
        counters.inc(METRICS.late);
        const starts = windowStartsFor(config.window, rec.ts);
        late.push({
          key: message.key,
          value: message.value,
          headers: {
            [LATE_HEADER.reason]: 'window_closed',
            [LATE_HEADER.windowStart]: String(starts[0]),
            [LATE_HEADER.windowEnd]: String(starts[starts.length - 1]! + config.window.sizeMs),
            [LATE_HEADER.watermark]: String(vehicleTime),
            [LATE_HEADER.eventTs]: String(rec.ts),
            'pitwall.source.topic': batch.topic,
            'pitwall.source.partition': String(partition),
            'pitwall.source.offset': message.offset,
          },
        });
      }
    }
    if (next === undefined) return;
    const closed = state.drainClosed();
    const floorChanges = state.drainFloorChanges();
    const topicMessages = [];
    if (closed.length > 0) {
      topicMessages.push({
        topic: config.topics.features,
        messages: closed.map((w) => ({ key: w.vehicleId, value: deps.featuresCodec.encode(toFeatureRecord(w, namesDefinition ? w.def : undefined)) })),
      });
    }
    if (late.length > 0) topicMessages.push({ topic: config.topics.late, messages: late });
    if (deadLetters.length > 0) topicMessages.push({ topic: config.topics.dlq, messages: deadLetters });
    if (floorChanges.length > 0) {
      topicMessages.push({
        topic: config.topics.floors,
        messages: floorChanges.map((c) => ({ partition, key: c.vehicleId, value: c.floor === null ? null : String(c.floor) })),
      });
    }
    const commit = state.commitPoint(next);

    const producer = await producerFor(partition);
    const txn = await producer.transaction();
    try {
      if (topicMessages.length > 0) await sender.send((chunk) => txn.sendBatch({ topicMessages: chunk }), topicMessages);
      await sendOffsetsInTransaction(txn, {
        consumerGroupId: config.groupId,
        // kafkajs's types omit it, but TxnOffsetCommit carries per-partition metadata and kafkajs sends it.
        topics: [{ topic: batch.topic, partitions: [{ partition, offset: commit.offset.toString(), metadata: encodeResume(commit.resume) } as PartitionOffset] }],
      });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => {});
      // The in-memory state is ahead of what was committed: rebuild the partition from its last
      // commit. A fenced producer means another instance owns the partition now.
      states.delete(partition);
      dropProducer(partition);
      counters.inc(METRICS.transactionsAborted);
      log.warn('transaction aborted; partition resumes from its last commit', { partition, err });
      readiness.batchFailed(batchExtent(batch), err);
      const last = committed.get(partition);
      // Nothing resolved yet since the last join: kafkajs refetches from the committed offset itself.
      if (!last) throw err;
      consumer!.seek({ topic: batch.topic, partition, offset: last.offset.toString() });
      return;
    }
    committed.set(partition, commit);
    counters.inc(METRICS.transactionsCommitted);
    const floors = committedFloors.get(partition)!;
    for (const c of floorChanges) {
      if (c.floor === null) floors.delete(c.vehicleId);
      else floors.set(c.vehicleId, c.floor);
    }
    counters.inc(METRICS.emitted, closed.length);
    const committedAt = Date.now();
    for (const w of closed) metrics.windowEndToEmit.observe(secondsSince(w.end, committedAt));
    // Moves kafkajs's fetch position past this batch; the transaction above decides where a
    // restarted consumer resumes (autoCommit is off, so resolved offsets are never committed).
    resolveOffset((next - 1n).toString());
    await heartbeat();
  };

  return {
    async start() {
      admin = deps.kafka.admin();
      await admin.connect();
      await ensureTopics(admin, [{ topic: config.topics.telemetry }, { topic: config.topics.features }, { topic: config.topics.dlq }, { topic: config.topics.late }], {
        partitions: config.partitions,
      });
      // One floors partition per input partition (records name their partition explicitly).
      const [telemetryMeta] = (await admin.fetchTopicMetadata({ topics: [config.topics.telemetry] })).topics;
      const inputPartitions = telemetryMeta!.partitions.length;
      await ensureTopics(admin, [{ topic: config.topics.floors, numPartitions: inputPartitions, configEntries: { 'cleanup.policy': 'compact' } }], {
        partitions: inputPartitions,
      });
      const [floorsMeta] = (await admin.fetchTopicMetadata({ topics: [config.topics.floors] })).topics;
      if (floorsMeta!.partitions.length < inputPartitions) {
        throw new PitwallError(
          'topics.floors_partitions',
          `${config.topics.floors} has ${floorsMeta!.partitions.length} partitions, fewer than the ${inputPartitions} of ${config.topics.telemetry}; add partitions to it`,
        );
      }
      // Every topic it writes to (idle markers go to the telemetry topic).
      sender.setBudget(await readSendBudget(deps.kafka, Object.values(config.topics), config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, log));
      consumer = deps.kafka.consumer({
        groupId: config.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: config.fetchMaxWaitMs ?? 250,
        minBytes: config.fetchMinBytes ?? 1,
        maxBytesPerPartition: config.maxBytesPerPartition,
        readUncommitted: false,
      });
      // After any rebalance every partition resumes from its commit: drop all in-memory state, and
      // the producers of partitions this instance no longer owns.
      markers = deps.kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
      await markers.connect();
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        states.clear();
        committed.clear();
        committedFloors.clear();
        owned.clear();
        for (const p of e.payload.memberAssignment[config.topics.telemetry] ?? []) owned.add(p);
        for (const partition of producers.partitions()) if (!owned.has(partition)) dropProducer(partition);
        log.info('joined group', { assignment: e.payload.memberAssignment });
        const gen = ++generation;
        const partitions = [...owned].sort((a, b) => a - b);
        floorsLoad = partitions.length === 0 ? undefined : loadFloors(partitions, gen);
        floorsLoad?.catch((err: unknown) => log.warn('loading floors after joining failed; retried on the next batch', { err }));
      });
      const run = (): Promise<void> =>
        runConsumer(
          consumer!,
          { topic: config.topics.telemetry, fromBeginning: true },
          { autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: readiness.eachBatch(eachBatch) },
        );
      watchConsumer(readiness, consumer, 'consumer', { restart: run, log });
      watchConsumerLag(metrics.registry, consumer, config.groupId);
      await run();
      readiness.set('windowing', true);
      if (config.idleMs > 0) {
        idleTimer = setInterval(
          () => {
            checkIdle().catch((err: unknown) => log.warn('idle check failed', { err }));
          },
          Math.max(200, Math.floor(config.idleMs / 4)),
        );
        idleTimer.unref();
      }
      log.info('windowing started', { window: config.window, windows, topics: config.topics });
    },
    async close() {
      readiness.set('windowing', false, 'closing');
      if (idleTimer) clearInterval(idleTimer);
      await consumer?.disconnect();
      generation++;
      await floorsLoad?.catch(() => {});
      await markers?.disconnect();
      await producers.closeAll();
      await admin?.disconnect();
    },
    ready: () => readiness.ready(),
    stats() {
      let open = 0;
      let vehicles = 0;
      for (const s of states.values()) {
        open += s.openWindows();
        vehicles += s.vehicles();
      }
      return { ...counters.snapshot(), openWindows: open, vehicles, floors: [...committedFloors.values()].reduce((n, f) => n + f.size, 0) };
    },
  };
}
