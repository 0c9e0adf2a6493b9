/**
 * Incidents: vehicle.scores + maintenance.incident-commands + vehicle.receipts -> incident state on
 * the compacted maintenance.incidents topic (key = incident_id), exactly once.
 *
 * Partitioning: the three inputs are keyed by vehicle_id with kafkajs's default (murmur2)
 * partitioner and have the same partition count, and the group uses the co-partitioned assigner
 * (assigner.ts), so partition number p of all three belongs to one instance, which holds the
 * incidents of the vehicles hashing to p (one IncidentState per p).
 *
 * Exactly-once (same approach as windowing): every fetched batch of an input topic-partition is
 * one Kafka transaction holding the incident records it produced, its dead letters and the consumer
 * offset of that batch. Partition number p has its own transactional id `${prefix}-p${p}`, shared
 * by its three input topics, so a new owner of p (rebalance, or a restart after kill -9) fences the
 * old owner's producer, aborting its open transaction, before it rebuilds the state of p.
 *
 * State rebuild: after every group join (and after an aborted transaction) the state of the owned
 * partitions is rebuilt from maintenance.incidents itself, read read_committed from the beginning
 * to its end, keeping the incidents whose vehicle hashes to an owned partition. This happens lazily
 * before the first batch of the new assignment is processed, after the producers of the owned
 * partitions are (re)initialised, so every transaction of a previous owner is either committed
 * (and read) or aborted. The topic and the committed offsets were written together, so the rebuilt
 * state is the state at the committed offsets; should an offset commit still be in flight while
 * the new owner fetched its offsets, the replayed inputs are ignored by the rules themselves
 * (stale windows, forward-only statuses, delivered_at set once: see incident-state.ts).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
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
  dispose,
  ensureTopics,
  keyPartition,
  startTopicReader,
  InvalidInputError,
  PitwallError,
  undecodableRecord,
  type AvroCodec,
  type IncidentCommandRecord,
  type IncidentRecord,
  type Logger,
  type ReceiptRecord,
  type Registry,
  type ScoreRecord,
  type Service,
} from '@pitwall/common';
import { coPartitionedAssigner } from './assigner.js';
import { apply, counts, createIncidentState, load, type IncidentState, type Input } from './incident-state.js';
import { createIncidentsMetrics, METRICS } from './metrics.js';

export interface IncidentsConfig {
  service: string;
  groupId: string;
  /** Partition count for topics this service creates when they are missing. */
  partitions: number;
  /** Transactional ids are `${prefix}-p${partition}`. */
  transactionalIdPrefix: string;
  clearAfterWindows: number;
  sessionTimeoutMs?: number;
  /** Fetch size per partition (default kafkajs's 1 MiB). */
  maxBytesPerPartition?: number;
  /** Most bytes per send (KAFKA_MAX_BATCH_BYTES; lowered to the topics' max.message.bytes at start). */
  maxBatchBytes?: number;
  topics: { scores: string; commands: string; receipts: string; incidents: string; dlq: string };
}

export interface IncidentsCodecs {
  score: AvroCodec<ScoreRecord>;
  command: AvroCodec<IncidentCommandRecord>;
  receipt: AvroCodec<ReceiptRecord>;
  incident: AvroCodec<IncidentRecord>;
}

export interface IncidentsDeps {
  kafka: Kafka;
  codecs: IncidentsCodecs;
  log: Logger;
  config: IncidentsConfig;
  /** Wall clock for updated_at and history; injectable for tests. */
  now?: () => number;
  /** Called when consuming has stopped for good (main.ts exits so the pod restarts). */
  onFatal?: (err: unknown) => void;
  /** Readiness checks (main.ts shares it with /readyz); one of its own when absent. */
  readiness?: Readiness;
  /** Where counters, histograms and lag gauges are registered (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export type Incidents = Service;

/** Changes caused by an anomalous window (the ones cars are alerted about). */
const ALERTING: ReadonlySet<string> = new Set(['OPENED', 'ESCALATED', 'REOPENED']);

/** The input partition of a vehicle: what the producers' default partitioner picks for key = vehicle_id. */
export function vehiclePartition(vehicleId: string, numPartitions: number): number {
  return keyPartition(vehicleId, numPartitions);
}

export function createIncidents(deps: IncidentsDeps): Incidents {
  const { config, log, codecs } = deps;
  const now = deps.now ?? Date.now;
  const metrics = createIncidentsMetrics(deps.metrics ?? createMetricsRegistry({ processMetrics: false }));
  const { counters } = metrics;
  const { scores, commands, receipts, incidents, dlq } = config.topics;
  const inputs = [scores, commands, receipts];
  const states = new Map<number, IncidentState>();
  // Offset (next to read) this instance last committed per input topic-partition, for seeking back
  // after an aborted transaction.
  const committed = new Map<string, string>();
  const producers = createPartitionProducers(deps.kafka, (partition) => `${config.transactionalIdPrefix}-p${partition}`);
  // A batch's incident records go out in chunks under the broker's limit, all in its one transaction.
  const sender = createBoundedSender({ maxBytes: config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, service: config.service, dlqTopic: dlq, log });
  const owned = new Set<number>();
  let inputPartitions = 0;
  // Group generations seen by this instance; a rebuild only installs state for the one it began in.
  let generation = 0;
  let joinRebuild: Promise<void> | undefined;
  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let running = false;
  const readiness = deps.readiness ?? createReadiness({ log });
  readiness.set('incidents', false, 'starting');

  const producerFor = (partition: number): Promise<Producer> => producers.get(partition);
  const dropProducer = (partition: number): void => producers.drop(partition);

  /** Fences the previous owners of `partitions`, then loads their incidents from the topic. */
  const rebuild = async (partitions: number[], gen: number): Promise<void> => {
    await Promise.all(partitions.map((p) => producerFor(p)));
    const fresh = new Map(partitions.map((p) => [p, createIncidentState({ clearAfterWindows: config.clearAfterWindows })]));
    let undecodable = 0;
    let read = 0;
    const restore = async (message: KafkaMessage): Promise<void> => {
      if (!message.value) return; // a tombstone: nothing to restore
      let record: IncidentRecord;
      try {
        record = await codecs.incident.decode(message.value);
      } catch (err) {
        if (dispose(err).action === 'retry') throw err;
        undecodable++;
        return;
      }
      const state = fresh.get(vehiclePartition(record.vehicle_id, inputPartitions));
      if (state) load(state, record);
    };
    const reader = await startTopicReader(deps.kafka, {
      topic: incidents,
      groupIdPrefix: `${config.groupId}.replay`,
      log,
      timeoutMs: 120_000,
      onBatch: async (batch) => {
        for (const message of batch.messages) {
          await restore(message);
          read++;
        }
      },
    });
    try {
      await reader.caughtUp;
    } finally {
      await reader.stop();
    }
    if (gen !== generation) return; // a rebalance happened meanwhile: its own rebuild applies
    for (const [p, state] of fresh) states.set(p, state);
    counters.inc(METRICS.rebuilds);
    counters.inc(METRICS.rebuildRecords, read);
    const restored = [...fresh.values()].reduce((n, s) => n + counts(s).incidents, 0);
    log.info('incident state rebuilt', { partitions, recordsRead: read, incidents: restored, undecodable });
    if (undecodable > 0) log.warn('undecodable records on the incidents topic were skipped', { count: undecodable });
  };

  const stateFor = async (partition: number): Promise<IncidentState> => {
    let state = states.get(partition);
    if (state) return state;
    // The rebuild started by the last group join, if it is still running (its errors are retried here).
    await joinRebuild?.catch(() => {});
    state = states.get(partition);
    if (state) return state;
    const gen = generation;
    const missing = [...new Set([...owned, partition])].filter((p) => !states.has(p)).sort((a, b) => a - b);
    await rebuild(missing, gen);
    state = states.get(partition);
    if (!state) throw new PitwallError('incidents.rebalanced', `partition ${partition} was reassigned while its state was rebuilt`, { retriable: true });
    return state;
  };

  const decode = async (topic: string, value: Buffer): Promise<Input> => {
    if (topic === scores) return { kind: 'score', record: await codecs.score.decode(value) };
    if (topic === commands) return { kind: 'command', record: await codecs.command.decode(value) };
    return { kind: 'receipt', record: await codecs.receipt.decode(value) };
  };

  const countChange = (r: IncidentRecord): void => {
    const metric = {
      OPENED: METRICS.opened,
      ESCALATED: METRICS.escalated,
      CLEARED: METRICS.cleared,
      RESOLVED: METRICS.resolved,
      ACKNOWLEDGED: METRICS.acknowledged,
      DELIVERED: METRICS.delivered,
    }[r.last_change as string];
    if (metric) counters.inc(metric);
  };

  // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs passes closures, meant to be destructured
  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const { topic, partition } = batch;
    const state = await stateFor(partition);
    const changes: IncidentRecord[] = [];
    const deadLetters: Message[] = [];
    let next: bigint | undefined;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        let input: Input;
        try {
          if (!message.value) throw new InvalidInputError('value.empty', 'empty message value');
          input = await decode(topic, message.value);
        } catch (err) {
          // A registry outage is retried (the batch is re-read); bytes that can never decode are dead-lettered.
          if (dispose(err).action === 'retry') throw err;
          counters.inc(METRICS.deadLettered);
          deadLetters.push(undecodableRecord(config.service, err, message, { topic, partition }));
          next = BigInt(message.offset) + 1n;
          continue;
        }
        next = BigInt(message.offset) + 1n;
        counters.inc(input.kind === 'score' ? METRICS.scores : input.kind === 'command' ? METRICS.commands : METRICS.receipts);
        const result = apply(state, input, now());
        if (result.ignored) {
          counters.inc(METRICS.ignored, 1, result.ignored);
          const level = input.kind === 'score' ? 'debug' : 'info';
          log[level]('input ignored', { reason: result.ignored, topic, partition, offset: message.offset });
        }
        for (const r of result.changes) countChange(r);
        changes.push(...result.changes);
      }
    } catch (err) {
      // The state may hold part of this batch: rebuild it from the topic before the batch is re-read.
      states.delete(partition);
      throw err;
    }
    if (next === undefined) return;

    const topicMessages = [];
    if (changes.length > 0) {
      topicMessages.push({ topic: incidents, messages: changes.map((r) => ({ key: r.incident_id, value: codecs.incident.encode(r) })) });
    }
    if (deadLetters.length > 0) topicMessages.push({ topic: dlq, messages: deadLetters });
    const offset = next.toString();
    try {
      const producer = await producerFor(partition);
      const txn = await producer.transaction();
      try {
        if (topicMessages.length > 0) await sender.send((chunk) => txn.sendBatch({ topicMessages: chunk }), topicMessages);
        await sendOffsetsInTransaction(txn, { consumerGroupId: config.groupId, topics: [{ topic, partitions: [{ partition, offset }] }] });
        await txn.commit();
      } catch (err) {
        await txn.abort().catch(() => {});
        throw err;
      }
    } catch (err) {
      // The in-memory state is ahead of what was committed: drop it (rebuilt from the topic on the
      // next batch) and re-read this batch from the last commit. A fenced producer means another
      // instance owns the partition now; the coming rebalance sorts that out.
      states.delete(partition);
      dropProducer(partition);
      counters.inc(METRICS.transactionsAborted);
      log.warn('transaction aborted; partition resumes from its last commit', { topic, partition, err });
      readiness.batchFailed(batchExtent(batch), err);
      const last = committed.get(`${topic}:${partition}`);
      // Nothing committed since the last join: kafkajs refetches from the committed offset itself.
      if (last === undefined) throw err;
      consumer!.seek({ topic, partition, offset: last });
      return;
    }
    committed.set(`${topic}:${partition}`, offset);
    counters.inc(METRICS.written, changes.length);
    const committedAt = now();
    for (const r of changes) {
      if (ALERTING.has(r.last_change)) metrics.windowEndToCommit.observe({ change: r.last_change }, secondsSince(r.last_anomalous_window_end, committedAt));
    }
    if (changes.length > 0) {
      log.debug('incident changes written', { topic, partition, changes: changes.map((r) => `${r.incident_id}@${r.revision}:${r.last_change}`) });
    }
    // Moves kafkajs's fetch position past this batch; the transaction above decides where a
    // restarted consumer resumes (autoCommit is off).
    resolveOffset((next - 1n).toString());
    await heartbeat();
  };

  return {
    async start() {
      admin = deps.kafka.admin();
      await admin.connect();
      await ensureTopics(admin, [{ topic: scores }, { topic: commands }, { topic: receipts }, { topic: incidents, configEntries: { 'cleanup.policy': 'compact' } }, { topic: dlq }], {
        partitions: config.partitions,
      });
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: inputs });
      const sizes = new Map(meta.map((t) => [t.name, t.partitions.length]));
      inputPartitions = sizes.get(scores) ?? 0;
      sender.setBudget(await readSendBudget(deps.kafka, [incidents, dlq], config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, log));
      if (inputs.some((t) => sizes.get(t) !== inputPartitions) || inputPartitions === 0) {
        throw new PitwallError(
          'topics.not_copartitioned',
          `${inputs.join(', ')} must have the same partition count to be co-partitioned by vehicle_id; they have ${inputs.map((t) => sizes.get(t)).join(', ')}`,
        );
      }
      consumer = deps.kafka.consumer({
        groupId: config.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 250,
        readUncommitted: false,
        ...(config.maxBytesPerPartition ? { maxBytesPerPartition: config.maxBytesPerPartition } : {}),
        partitionAssigners: [coPartitionedAssigner],
        ...(config.sessionTimeoutMs ? { sessionTimeout: config.sessionTimeoutMs, heartbeatInterval: Math.max(500, Math.floor(config.sessionTimeoutMs / 5)) } : {}),
      });
      // After any rebalance every owned partition is rebuilt from the topic, behind freshly
      // initialised (fencing) producers: drop all state and producers here.
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        states.clear();
        committed.clear();
        owned.clear();
        for (const t of inputs) for (const p of e.payload.memberAssignment[t] ?? []) owned.add(p);
        for (const partition of producers.partitions()) dropProducer(partition);
        const partitions = [...owned].sort((a, b) => a - b);
        log.info('joined group', { assignment: e.payload.memberAssignment, partitions });
        // Fence the previous owners and load the state now rather than at the first batch: a
        // partition without traffic would otherwise leave a dead owner's transaction open until
        // it times out, holding back every read_committed reader of the incidents topic.
        const gen = ++generation;
        joinRebuild = partitions.length === 0 ? undefined : rebuild(partitions, gen);
        joinRebuild?.catch((err: unknown) => log.warn('state rebuild after joining failed; retried on the next batch', { err }));
      });
      // kafkajs restarts the consumer after retriable errors by itself; otherwise it has stopped
      // for good and the pod should be seen as not ready (and restarted by its liveness owner).
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (payload.restart) return;
        running = false;
        log.error('consumer crashed and will not restart', { err: payload.error });
        deps.onFatal?.(payload.error);
      });
      const run = (): Promise<void> =>
        runConsumer(
          consumer!,
          { topics: inputs, fromBeginning: true },
          { autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: readiness.eachBatch(eachBatch) },
        );
      watchConsumer(readiness, consumer, 'consumer', { restart: run, log });
      watchConsumerLag(metrics.registry, consumer, config.groupId);
      await run();
      running = true;
      readiness.set('incidents', true);
      log.info('incidents started', { topics: config.topics, inputPartitions, clearAfterWindows: config.clearAfterWindows });
    },
    async close() {
      running = false;
      readiness.set('incidents', false, 'closing');
      await consumer?.disconnect();
      generation++;
      await joinRebuild?.catch(() => {});
      await producers.closeAll();
      await admin?.disconnect();
    },
    ready: () => running && readiness.ready(),
    stats() {
      let incidentsHeld = 0;
      let open = 0;
      for (const s of states.values()) {
        const c = counts(s);
        incidentsHeld += c.incidents;
        open += c.open;
      }
      return { ...counters.snapshot(), incidents: incidentsHeld, openIncidents: open, partitions: owned.size };
    },
  };
}
