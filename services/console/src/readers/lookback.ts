/**
 * A topic read from `lookbackMs` ago (by record timestamp, per partition) and then followed, in a
 * throw-away group of its own that commits nothing: the console's readers of vehicle.scores and
 * model.drift. The positions are kept here, so a consumer restarted after a crash resumes where it
 * was rather than at the lookback start.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { runFromPositions, watchConsumer, watchConsumerLag, type Logger, type Readiness, type Registry, type SeekTarget } from '@pitwall/common';

export interface LookbackReaderDeps {
  topic: string;
  groupIdPrefix: string;
  lookbackMs: number;
  now: () => number;
  log: Logger;
  readiness: Readiness;
  metrics: Registry;
}

export interface LookbackReader {
  /** Resolves once the consumer runs. */
  start(): Promise<void>;
  up(): boolean;
  stop(): Promise<void>;
}

/** `name` names the group (`<prefix>-<name>-<uuid>`) and the consumer in readiness and logs. */
export function createLookbackReader(kafka: Kafka, deps: LookbackReaderDeps, name: string, onValue: (value: Buffer, offset: string) => void | Promise<void>): LookbackReader {
  const { topic, log } = deps;
  let consumer: Consumer | undefined;
  let up = false;
  return {
    async start(): Promise<void> {
      const c = kafka.consumer({ groupId: `${deps.groupIdPrefix}-${name}-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      consumer = c;
      watchConsumer(deps.readiness, c, `${name} consumer`);
      watchConsumerLag(deps.metrics, c);
      c.on(c.events.CRASH, ({ payload }) => {
        if (!payload.restart) up = false;
        log.warn(`${name} consumer crashed`, { err: payload.error, restart: payload.restart });
      });
      const admin = kafka.admin();
      await admin.connect();
      let start: { partition: number; offset: string }[];
      try {
        start = await admin.fetchTopicOffsetsByTimestamp(topic, deps.now() - deps.lookbackMs);
      } finally {
        await admin.disconnect();
      }
      await c.connect();
      await c.subscribe({ topic, fromBeginning: false });
      // Next offset per partition: the lookback start, then past what was read.
      const next = new Map(start.map(({ partition, offset }) => [partition, offset]));
      const positions = (): SeekTarget[] => [...next].map(([partition, offset]) => ({ topic, partition, offset }));
      await runFromPositions(c, positions, {
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) if (m.value) await onValue(m.value, m.offset);
          const last = batch.messages.at(-1);
          if (last) next.set(batch.partition, (BigInt(last.offset) + 1n).toString());
        },
      });
      up = true;
    },
    up: (): boolean => up,
    async stop(): Promise<void> {
      await consumer?.disconnect();
    },
  };
}
