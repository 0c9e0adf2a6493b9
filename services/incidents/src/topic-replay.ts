/**
 * Reads a topic once from its beginning to where it ended when the read started, read_committed,
 * without joining the service's consumer group and without committing: for rebuilding incident
 * state from the compacted maintenance.incidents topic. kafkajs has no manual assignment, so a
 * throw-away group `<prefix>.replay.<uuid>` is used; it holds no offsets and disappears after.
 *
 * End detection: the end of a partition is its high watermark when the read starts. A partition
 * counts as read once a fetched batch's last offset reaches end - 1; kafkajs reports that offset
 * also for batches holding only transaction markers or aborted records (END_BATCH_PROCESS), which
 * is why the position is taken from that event and not from delivered messages. With read_committed
 * the read waits for transactions open at the end to finish; the caller fences its own first.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { TransientError, type Logger } from '@pitwall/common';

export interface ReplayOptions {
  topic: string;
  groupIdPrefix: string;
  log: Logger;
  timeoutMs?: number;
  onMessage(message: KafkaMessage, partition: number): Promise<void> | void;
}

/** Partitions with something to read and their end offset (exclusive). */
export function partitionEnds(offsets: readonly { partition: number; high: string; low: string }[]): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const o of offsets) if (BigInt(o.high) > BigInt(o.low)) out.set(o.partition, BigInt(o.high));
  return out;
}

/** Resolves with the number of messages delivered once every partition is read to its end. */
export async function replayTopic(kafka: Kafka, opts: ReplayOptions): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let remaining: Map<number, bigint>;
  try {
    remaining = partitionEnds(await admin.fetchTopicOffsets(opts.topic));
  } finally {
    await admin.disconnect();
  }
  if (remaining.size === 0) return 0;
  let count = 0;
  const consumer = kafka.consumer({
    groupId: `${opts.groupIdPrefix}.replay.${randomUUID()}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 250,
  });
  let done!: () => void;
  let fail!: (err: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic !== opts.topic) return;
    const end = remaining.get(payload.partition);
    if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end) {
      remaining.delete(payload.partition);
      if (remaining.size === 0) done();
    }
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(payload.error);
  });
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const timer = setTimeout(
    () => fail(new TransientError('incidents.replay_timeout', `reading ${opts.topic} did not reach its end within ${timeoutMs} ms (partitions left: ${[...remaining.keys()].join(',')})`)),
    timeoutMs,
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          await opts.onMessage(message, batch.partition);
          count++;
        }
      },
    });
    await finished;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch((err: unknown) => opts.log.warn('replay consumer disconnect failed', { err }));
  }
  return count;
}
