/**
 * Reads a whole topic from its beginning without joining the service's consumer group and without
 * committing anything: for rebuilding in-memory state from a compacted topic, and for the
 * terminal view. kafkajs has no manual partition assignment, so the reader uses a throw-away group
 * of its own (`<prefix>.<random>`), which holds no offsets and disappears once the reader leaves.
 *
 * `caughtUp` resolves once every partition has been read up to where it ended when the reader
 * started (the last stable offset: with read_committed, records of open transactions are not
 * readable yet and are not waited for). Transaction markers and compacted-away gaps count as
 * read: the position comes from the batch's last offset, control records included.
 */
import { randomUUID } from 'node:crypto';
import type { Batch, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '@pitwall/common';

export interface TopicReaderOptions {
  topic: string;
  groupIdPrefix: string;
  onBatch(batch: Batch): Promise<void> | void;
  log: Logger;
  /** Keep reading new records after catching up (default false: stop once caught up). */
  follow?: boolean;
}

export interface TopicReader {
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/** Partitions whose end (exclusive) is past their start, i.e. that hold something to read. */
export function partitionsToRead(offsets: readonly { partition: number; offset: string; low: string }[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const o of offsets) if (Number(o.offset) > Number(o.low)) out.set(o.partition, Number(o.offset));
  return out;
}

export async function startTopicReader(kafka: Kafka, opts: TopicReaderOptions): Promise<TopicReader> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    ends = partitionsToRead(await admin.fetchTopicOffsets(opts.topic));
  } finally {
    await admin.disconnect();
  }
  let markCaughtUp!: () => void;
  let fail!: (err: unknown) => void;
  const caughtUp = new Promise<void>((resolve, reject) => {
    markCaughtUp = resolve;
    fail = reject;
  });
  caughtUp.catch(() => {}); // a caller that only calls stop() must not see an unhandled rejection
  const remaining = new Map(ends);
  const check = (): void => {
    if (remaining.size === 0) markCaughtUp();
  };
  check();

  const consumer: Consumer = kafka.consumer({
    groupId: `${opts.groupIdPrefix}.${randomUUID()}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 250,
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic !== opts.topic) return;
    const end = remaining.get(payload.partition);
    if (end !== undefined && Number(payload.lastOffset) + 1 >= end) {
      remaining.delete(payload.partition);
      check();
    }
  });
  // kafkajs restarts a crashed consumer by itself unless the error is not retriable.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(payload.error);
  });
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => opts.onBatch(batch) });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= consumer.disconnect());
  if (!opts.follow) void caughtUp.then(stop);
  opts.log.debug('topic reader started', { topic: opts.topic, partitions: [...ends.entries()] });
  return { caughtUp, stop };
}
