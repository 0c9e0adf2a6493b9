/**
 * Reads a whole topic from its beginning without joining a service's consumer group and without
 * committing anything: for rebuilding in-memory state from a compacted topic (incidents, dispatch,
 * console) and for terminal views. kafkajs has no manual partition assignment, so the reader uses
 * a throw-away group of its own (`<prefix>.<uuid>`), which holds no offsets and disappears once
 * the reader leaves.
 *
 * `caughtUp` resolves once every partition has been read up to where it ended when the reader
 * started (its high watermark then). The read is read_committed: records of transactions still
 * open at that moment are waited for (a caller that writes the topic transactionally fences its
 * own producers first). Transaction markers, aborted records and compacted-away gaps count as
 * read: the position comes from kafkajs' END_BATCH_PROCESS `lastOffset`, which covers control
 * records too, not from the messages delivered.
 */
import { randomUUID } from 'node:crypto';
import type { Batch, Consumer, Kafka } from 'kafkajs';
import { deferred } from './deferred.js';
import { TransientError } from './errors.js';
import type { Logger } from './log.js';

export interface TopicReaderOptions {
  topic: string;
  groupIdPrefix: string;
  onBatch(batch: Batch): Promise<void> | void;
  log: Logger;
  /** Keep reading new records after catching up (default false: stop once caught up). */
  follow?: boolean;
  /** `caughtUp` rejects with a TransientError when the end is not reached in time (default: no limit). */
  timeoutMs?: number;
  /** Called with the reader's consumer before it runs (e.g. to watch it for readiness). */
  onConsumer?: (consumer: Consumer) => void;
}

export interface TopicReader {
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/** Partitions that hold something to read, with their end offset (exclusive) when the read starts. */
export function partitionsToRead(offsets: readonly { partition: number; high: string; low: string }[]): Map<number, bigint> {
  const out = new Map<number, bigint>();
  for (const o of offsets) if (BigInt(o.high) > BigInt(o.low)) out.set(o.partition, BigInt(o.high));
  return out;
}

export async function startTopicReader(kafka: Kafka, opts: TopicReaderOptions): Promise<TopicReader> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    ends = partitionsToRead(await admin.fetchTopicOffsets(opts.topic));
  } finally {
    await admin.disconnect();
  }
  const { promise: caughtUp, resolve: markCaughtUp, reject: fail } = deferred();
  caughtUp.catch(() => {}); // a caller that only calls stop() must not see an unhandled rejection
  const remaining = new Map(ends);
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    if (remaining.size > 0) return;
    if (timer) clearTimeout(timer);
    markCaughtUp();
  };
  if (opts.timeoutMs !== undefined && remaining.size > 0) {
    const ms = opts.timeoutMs;
    timer = setTimeout(() => fail(new TransientError('topic.read_timeout', `reading ${opts.topic} did not reach its end within ${ms} ms (partitions left: ${[...remaining.keys()].join(',')})`)), ms);
  }
  check();
  if (remaining.size === 0 && !opts.follow) return { caughtUp, stop: async () => {} };

  const consumer: Consumer = kafka.consumer({
    groupId: `${opts.groupIdPrefix}.${randomUUID()}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 250,
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic !== opts.topic) return;
    const end = remaining.get(payload.partition);
    if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end) {
      remaining.delete(payload.partition);
      check();
    }
  });
  // kafkajs restarts a crashed consumer by itself unless the error is not retriable.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(payload.error);
  });
  opts.onConsumer?.(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => opts.onBatch(batch) });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    return (stopped ??= consumer.disconnect());
  };
  // A failed disconnect is the caller's to see through stop(); this chain only must not reject unhandled.
  if (!opts.follow) caughtUp.then(stop, stop).catch((err: unknown) => opts.log.warn('topic reader did not disconnect', { topic: opts.topic, err }));
  opts.log.debug('topic reader started', { topic: opts.topic, partitions: [...ends.entries()].map(([p, e]) => [p, String(e)]) });
  return { caughtUp, stop };
}
