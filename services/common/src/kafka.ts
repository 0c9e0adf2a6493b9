/** Kafka client construction and topic provisioning shared by every service. */
// First: it must reach the module cache before kafkajs loads (see the module).
import { linearGroupingInstalled } from './kafkajs-grouping.js';
import {
  Kafka,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer,
  type ConsumerRunConfig,
  type ITopicConfig,
  type KafkaConfig,
  type LogEntry,
  type Offsets,
  type Producer,
  type ProducerBatch,
  type RecordMetadata,
} from 'kafkajs';
import type { CommonConfig, KafkaSecurity } from './config.js';
import type { Logger } from './log.js';
import { javaCompatiblePartitioner } from './partitioner.js';

// kafkajs's ConfigResourceTypes.TOPIC; its CommonJS build does not expose the enum as an ES named export.
const TOPIC_RESOURCE = 2;

/**
 * kafkajs's `ssl` and `sasl` options for KAFKA_SECURITY_PROTOCOL and friends (config.ts). Without
 * a security setting (library callers, PLAINTEXT) neither is set.
 */
export function kafkaSecurityOptions(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (security === undefined) return {};
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (security.tls) out.ssl = security.tls.ca === undefined ? true : { ca: [security.tls.ca], rejectUnauthorized: true };
  if (security.sasl) {
    const { mechanism, username, password } = security.sasl;
    out.sasl = mechanism === 'plain' ? { mechanism, username, password } : mechanism === 'scram-sha-256' ? { mechanism, username, password } : { mechanism, username, password };
  }
  return out;
}

export function createKafka(config: { kafka: Pick<CommonConfig['kafka'], 'brokers' | 'clientId'> & { security?: KafkaSecurity | undefined } }, log: Logger): Kafka {
  const kafkaLog = log.child({ component: 'kafkajs' });
  const kafka = new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    ...kafkaSecurityOptions(config.kafka.security),
    logLevel: KafkaLogLevel.WARN,
    retry: { initialRetryTime: 200, retries: 8 },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // kafkajs logs every rebalance and transient broker hiccup as ERROR; they are retried.
        if (level <= KafkaLogLevel.ERROR) kafkaLog.warn(message, rest);
        else kafkaLog.debug(message, rest);
      },
  });
  // Every producer partitions as kafkajs's default does, without its per-record Long arithmetic
  // (partitioner.ts); a producer given its own partitioner keeps it.
  if (!linearGroupingInstalled()) {
    kafkaLog.warn('kafkajs was loaded before @pitwall/common: large sends group their records by partition in quadratic time (kafkajs-grouping.ts)');
  }
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (options) => producer({ createPartitioner: javaCompatiblePartitioner, ...options });
  return kafka;
}

/**
 * A producer whose session can be replaced: send.ts's `reset` after a refused multi-record send,
 * whose idempotent sequence numbers are then out of step. Reconnecting the same kafkajs producer
 * reuses its connection objects, and with SASL the new session's authentication could run into the
 * old socket's close ("SASL SCRAM SHA512 authentication failed: Closed connection", not retriable):
 * the producer stayed disconnected and every later send failed. A reset therefore makes a new
 * producer, and a send first connects one whose connect failed. After disconnect() sends fail.
 */
export interface ProducerSession {
  connect(): Promise<void>;
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>;
  reset(): Promise<void>;
  disconnect(): Promise<void>;
}

export function createProducerSession(make: () => Producer): ProducerSession {
  let producer = make();
  let connecting: Promise<void> | undefined;
  let closed = false;
  const connect = (): Promise<void> => {
    if (closed) return Promise.reject(new Error('The producer is disconnected'));
    return (connecting ??= producer.connect().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    }));
  };
  return {
    connect,
    async sendBatch(batch) {
      await connect();
      return producer.sendBatch(batch);
    },
    async reset() {
      const old = producer;
      producer = make();
      connecting = undefined;
      await old.disconnect().catch(() => undefined);
      await connect();
    },
    async disconnect() {
      closed = true;
      connecting = undefined;
      await producer.disconnect();
    },
  };
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  configEntries?: Record<string, string>;
}

/** Creates missing topics; existing ones are left as they are. */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], defaults: { partitions: number }): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = specs
    .filter((s) => !existing.has(s.topic))
    .map((s) => ({
      topic: s.topic,
      numPartitions: s.numPartitions ?? defaults.partitions,
      replicationFactor: -1,
      configEntries: Object.entries(s.configEntries ?? {}).map(([name, value]) => ({ name, value })),
    }));
  if (missing.length > 0) {
    try {
      // Not kafkajs's own wait: it gives up on the first UNKNOWN_TOPIC_OR_PARTITION, which a KRaft
      // broker answers while its metadata cache has not yet applied the controller's new topic.
      await admin.createTopics({ topics: missing, waitForLeaders: false });
    } catch (err) {
      // Another instance may have created some in between (TOPIC_ALREADY_EXISTS beside other
      // topics' success), or a busy controller answered REQUEST_TIMED_OUT while it goes on creating
      // them: waitForLeaders below then waits for the topics to be served. Anything else (no
      // authorization, an invalid config) fails now unless the topics exist after all.
      if (!creationMayComplete(err)) {
        const now = new Set(await admin.listTopics());
        if (!missing.every((t) => now.has(t.topic))) throw err;
      }
    }
  }
  await waitForLeaders(
    admin,
    specs.map((s) => s.topic),
  );
}

/** Whether a failed createTopics may still leave every topic created: each error is "exists" or retriable. */
export function creationMayComplete(err: unknown): boolean {
  const errors = (err as { errors?: unknown[] }).errors ?? [err];
  return errors.length > 0 && errors.every((e) => (e as { type?: string }).type === 'TOPIC_ALREADY_EXISTS' || (e as { retriable?: boolean }).retriable === true);
}

/**
 * Waits until the topics are usable, not just listed. Right after a topic is created (here or by
 * another service starting in parallel) a KRaft broker first answers UNKNOWN_TOPIC_OR_PARTITION,
 * then names leaders in its metadata while the leader itself still answers
 * NOT_LEADER_OR_FOLLOWER to ListOffsets and Produce for a moment. kafkajs retries neither in
 * admin.fetchTopicOffsets or in createTopics' own wait, so a service reading offsets or producing
 * at start failed on a fresh cluster. Here both are retried until the deadline: every partition
 * has a leader in the metadata, and that leader answers ListOffsets.
 */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      const led = meta.length === topics.length && meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (led) {
        await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)));
        return;
      }
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`topics ${topics.join(', ')} are not served by partition leaders after ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`, { cause: last });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Bytes kept free under the broker's limit, for what the size estimate of send.ts may miss. */
export const SEND_BUDGET_MARGIN = 1024;

/**
 * The byte budget for sends to `topics`: the smaller of `configuredMax` (KAFKA_MAX_BATCH_BYTES) and
 * the smallest `max.message.bytes` of the topics as the broker reports it (a topic's own setting
 * or the broker default), less SEND_BUDGET_MARGIN. If the configs cannot be read (e.g. no
 * DescribeConfigs permission), the configured value is used and a refused send lowers it later.
 */
export async function readSendBudget(kafka: Pick<Kafka, 'admin'>, topics: readonly string[], configuredMax: number, log?: Logger): Promise<number> {
  let admin: Admin | undefined;
  let smallest = Number.POSITIVE_INFINITY;
  try {
    admin = kafka.admin();
    await admin.connect();
    const { resources } = await admin.describeConfigs({
      resources: [...new Set(topics)].map((name) => ({ type: TOPIC_RESOURCE, name, configNames: ['max.message.bytes'] })),
      includeSynonyms: false,
    });
    for (const r of resources) {
      const v = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
      if (Number.isFinite(v) && v > 0) smallest = Math.min(smallest, v);
    }
  } catch (err) {
    log?.warn('could not read max.message.bytes of the topics; using the configured send budget', { topics, configuredMax, err });
  } finally {
    await admin?.disconnect().catch(() => {});
  }
  const limit = Math.min(configuredMax, smallest);
  const budget = Math.max(limit - SEND_BUDGET_MARGIN, Math.floor(limit / 2));
  log?.info('send budget', { budget, configuredMax, topicLimit: Number.isFinite(smallest) ? smallest : null, topics });
  return budget;
}

/** ensureTopics with a short-lived admin client, for services that need no admin otherwise. */
export async function provisionTopics(kafka: Pick<Kafka, 'admin'>, specs: readonly TopicSpec[], defaults: { partitions: number }): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, specs, defaults);
  } finally {
    await admin.disconnect();
  }
}

export interface SeekTarget {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * consumer.run for a throw-away group that commits nothing and reads from positions the caller
 * chooses: `positions()` is sought each time the group is joined, before anything is fetched.
 * Seeking once after run() is not enough: when kafkajs restarts a crashed consumer it drops the
 * seeks and starts a new group session (from the latest offsets here), and a seek made during the
 * restart throws. A brand-new cluster crashes the first joins with GROUP_LOAD_IN_PROGRESS, which
 * made the console fail to start. `positions()` should say where reading resumes (the next offset
 * not yet handled), so a rejoin neither skips nor repeats records.
 */
export async function runFromPositions(consumer: Consumer, positions: () => readonly SeekTarget[], config: ConsumerRunConfig): Promise<void> {
  consumer.on(consumer.events.GROUP_JOIN, () => {
    for (const target of positions()) consumer.seek(target);
  });
  await consumer.run(config);
}

/**
 * Whether a consumer crash that kafkajs will not restart is a lost connection in disguise. kafkajs's
 * SCRAM and PLAIN authenticators turn any error during the handshake into a non-retriable
 * KafkaJSSASLAuthenticationError ("SASL SCRAM SHA512 authentication failed: Connection error: read
 * ECONNRESET"), so a broker that goes down while a connection signs in stopped windowing for good
 * (seen in the Kafka outage test). Wrong credentials say something else and stay fatal.
 */
export function isConnectionLostDuringSasl(err: unknown): boolean {
  for (let e = err as { name?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) {
    const message = typeof e.message === 'string' ? e.message : '';
    if (!/SASL .*authentication failed/i.test(message) && e.name !== 'KafkaJSSASLAuthenticationError') continue;
    return /Connection error|Closed connection|Connection timeout|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|Request .* timed out/i.test(message);
  }
  return false;
}

/** connect, subscribe and run: how every stage starts its consumer (and restarts it after a crash kafkajs leaves down). */
export async function runConsumer(consumer: Consumer, subscription: Parameters<Consumer['subscribe']>[0], config: ConsumerRunConfig): Promise<void> {
  await consumer.connect();
  await consumer.subscribe(subscription);
  await consumer.run(config);
}

/** Waits between tries of AddOffsetsToTxn answered with CONCURRENT_TRANSACTIONS (ms; about 2.5 s in all). */
export const CONCURRENT_TXN_WAITS_MS: readonly number[] = [10, 20, 40, 80, 160, 320, 500, 500, 500];

/**
 * Adds the consumer's offsets to the open transaction (TxnOffsetCommit), retrying
 * CONCURRENT_TRANSACTIONS. Right after a commit's EndTxn the coordinator is still writing the
 * previous transaction's markers and answers the next AddOffsetsToTxn with that error; the Java
 * client retries it, kafkajs sends it once and throws. Stages that commit a transaction per fetched
 * batch hit it whenever batches follow each other closely: windowing aborted 51 transactions in a
 * 300-car run (each a rebuild of the partition's state from Kafka). Nothing was added when it fails,
 * so trying again is safe. Returns how many retries it took.
 */
export async function sendOffsetsInTransaction(
  txn: { sendOffsets(offsets: Offsets & { consumerGroupId: string }): Promise<void> },
  offsets: Offsets & { consumerGroupId: string },
  waitsMs: readonly number[] = CONCURRENT_TXN_WAITS_MS,
): Promise<number> {
  for (let retry = 0; ; retry++) {
    try {
      await txn.sendOffsets(offsets);
      return retry;
    } catch (err) {
      const wait = waitsMs[retry];
      if ((err as { type?: unknown }).type !== 'CONCURRENT_TRANSACTIONS' || wait === undefined) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/**
 * One transactional producer per input partition, created on first use. Exactly-once stages use
 * a transactional id per input partition (not per instance): whoever owns the partition next
 * initialises the same id, which fences a zombie previous owner and aborts its open transaction.
 */
export interface PartitionProducers {
  get(partition: number): Promise<Producer>;
  /** Disconnects and forgets one partition's producer (lost partition, or a failed transaction). */
  drop(partition: number): void;
  partitions(): number[];
  closeAll(): Promise<void>;
}

export function createPartitionProducers(kafka: Pick<Kafka, 'producer'>, transactionalIdFor: (partition: number) => string): PartitionProducers {
  const producers = new Map<number, Promise<Producer>>();
  const disconnect = (p: Promise<Producer> | undefined): Promise<void> => (p ? p.then((producer) => producer.disconnect()).catch(() => {}) : Promise.resolve());
  return {
    get(partition) {
      let p = producers.get(partition);
      if (!p) {
        const producer = kafka.producer({ transactionalId: transactionalIdFor(partition), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
        p = producer.connect().then(() => producer);
        p.catch(() => producers.delete(partition));
        producers.set(partition, p);
      }
      return p;
    },
    drop(partition) {
      const p = producers.get(partition);
      producers.delete(partition);
      void disconnect(p); // does not reject: disconnect() swallows a failed disconnect of a dropped producer
    },
    partitions: () => [...producers.keys()],
    async closeAll() {
      const all = [...producers.values()];
      producers.clear();
      await Promise.all(all.map(disconnect));
    },
  };
}

/**
 * What a consumer group has still to read of one partition: its committed offset up to the end
 * (high watermark). A group that never committed (offset -1) counts from the start (low).
 */
export function partitionLag(committed: string | bigint, end: { high: string | bigint; low: string | bigint }): bigint {
  const high = BigInt(end.high);
  const c = BigInt(committed);
  const from = c >= 0n ? c : BigInt(end.low);
  return high > from ? high - from : 0n;
}
