/**
 * Reading and writing `model.updates` (format in model-updates.ts) on Kafka.
 *
 * Readers never share a consumer group: each uses a group id unique to the process and commits
 * nothing, reading from the oldest retained event. Startup first reads up to the end offsets
 * fetched when it began (the catch-up), so the caller can start from the folded history; events
 * after that are handed over one at a time, in log order.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Consumer, Kafka } from 'kafkajs';
import { deferred, provisionTopics, type Logger } from '@pitwall/common';
import { encodeModelUpdate, parseModelUpdate, type ModelUpdateEvent } from './model-updates.js';

/** One partition keeps the events totally ordered; unlimited retention keeps the history rollback needs. */
export async function provisionModelUpdates(kafka: Kafka, topic: string): Promise<void> {
  await provisionTopics(kafka, [{ topic, numPartitions: 1, configEntries: { 'retention.ms': '-1' } }], { partitions: 1 });
}

/** A group id nobody else uses: every reader must see every event. */
export function uniqueGroupId(prefix: string): string {
  return `${prefix}.${os.hostname()}.${process.pid}.${randomBytes(4).toString('hex')}`;
}

export interface ModelUpdatesFollower {
  /** Provisions the topic, reads up to the current end and resolves with those events. */
  start(): Promise<ModelUpdateEvent[]>;
  close(): Promise<void>;
}

export function createModelUpdatesFollower(opts: {
  kafka: Kafka;
  topic: string;
  groupId: string;
  log: Logger;
  /** Live events after the catch-up, awaited one at a time. Errors are logged, never fatal. */
  onEvent?: (event: ModelUpdateEvent) => Promise<void>;
  /** A record that is not a valid event (it is skipped). */
  onInvalid?: (reason: string) => void;
  catchUpTimeoutMs?: number;
}): ModelUpdatesFollower {
  const log = opts.log.child({ component: 'model-updates' });
  let consumer: Consumer | undefined;
  let closed = false;

  return {
    async start() {
      await provisionModelUpdates(opts.kafka, opts.topic);
      const admin = opts.kafka.admin();
      await admin.connect();
      let ends: Map<number, bigint>;
      try {
        const offsets = await admin.fetchTopicOffsets(opts.topic);
        // Partitions with nothing retained need no catch-up; otherwise read up to high - 1.
        ends = new Map(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high) - 1n]));
      } finally {
        await admin.disconnect();
      }
      const caughtUp: ModelUpdateEvent[] = [];
      let live = false;
      const { promise: catchUp, resolve: resolveCatchUp } = deferred();
      const checkCaughtUp = (): void => {
        if (!live && ends.size === 0) {
          live = true;
          resolveCatchUp();
        }
      };
      consumer = opts.kafka.consumer({ groupId: opts.groupId, allowAutoTopicCreation: false });
      await consumer.connect();
      await consumer.subscribe({ topics: [opts.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          let event: ModelUpdateEvent | undefined;
          try {
            event = parseModelUpdate(message.value);
          } catch (err) {
            log.warn('model update skipped: not a valid event', { partition, offset: message.offset, reason: (err as Error).message });
            opts.onInvalid?.((err as Error).message);
          }
          if (event) {
            if (!live) caughtUp.push(event);
            else {
              try {
                await opts.onEvent?.(event);
              } catch (err) {
                log.error('model update failed to apply', { err, event });
              }
            }
          }
          const end = ends.get(partition);
          if (end !== undefined && BigInt(message.offset) >= end) ends.delete(partition);
          checkCaughtUp();
        },
      });
      checkCaughtUp();
      const timeoutMs = opts.catchUpTimeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          catchUp,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`reading ${opts.topic} did not reach its end within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
      return caughtUp;
    },
    async close() {
      if (closed) return;
      closed = true;
      await consumer?.disconnect();
    },
  };
}

/** Reads every retained event (used by the CLI). */
export async function readModelUpdates(kafka: Kafka, topic: string, log: Logger): Promise<ModelUpdateEvent[]> {
  const follower = createModelUpdatesFollower({ kafka, topic, groupId: uniqueGroupId('pitwall-model-cli'), log });
  try {
    return await follower.start();
  } finally {
    await follower.close();
  }
}

/** Appends one event (acks from all in-sync replicas) and returns its offset. */
export async function publishModelUpdate(kafka: Kafka, topic: string, event: ModelUpdateEvent): Promise<string> {
  await provisionModelUpdates(kafka, topic);
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: event.model, value: encodeModelUpdate(event) }] });
    return meta?.baseOffset ?? meta?.offset ?? '?';
  } finally {
    await producer.disconnect();
  }
}
