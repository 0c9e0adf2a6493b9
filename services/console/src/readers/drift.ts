/**
 * model.drift (JSON drift records of the scoring replicas, compacted; drift.ts), read from
 * `lookbackMs` ago (by record timestamp) and then followed, into the drift view. Own throw-away
 * group, nothing committed; positions kept here as for vehicle.scores (scores.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { runFromPositions, watchConsumer, watchConsumerLag, type Counters, type Logger, type Readiness, type Registry, type SeekTarget } from '@pitwall/common';
import type { DriftView } from '../drift.js';
import { METRICS } from '../metrics.js';

export interface DriftReaderDeps {
  topic: string;
  groupIdPrefix: string;
  lookbackMs: number;
  drift: Pick<DriftView, 'apply'>;
  now: () => number;
  counters: Counters;
  log: Logger;
  readiness: Readiness;
  metrics: Registry;
}

/** Applies one record's value; a value that is not JSON or not a drift record is counted and skipped. */
export function applyDriftValue(deps: Pick<DriftReaderDeps, 'drift' | 'counters' | 'log'>, value: Buffer, offset: string): void {
  deps.counters.inc(METRICS.driftRead);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!deps.drift.apply(parsed)) {
    deps.counters.inc(METRICS.undecodable, 1, 'drift');
    deps.log.debug('unreadable drift record skipped', { offset });
  }
}

export function createDriftReader(kafka: Kafka, deps: DriftReaderDeps) {
  const { topic, log } = deps;
  let consumer: Consumer | undefined;
  let up = false;
  return {
    async start(): Promise<void> {
      const c = kafka.consumer({ groupId: `${deps.groupIdPrefix}-drift-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      consumer = c;
      watchConsumer(deps.readiness, c, 'drift consumer');
      watchConsumerLag(deps.metrics, c);
      c.on(c.events.CRASH, ({ payload }) => {
        if (!payload.restart) up = false;
        log.warn('drift consumer crashed', { err: payload.error, restart: payload.restart });
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
      const next = new Map(start.map(({ partition, offset }) => [partition, offset]));
      const positions = (): SeekTarget[] => [...next].map(([partition, offset]) => ({ topic, partition, offset }));
      await runFromPositions(c, positions, {
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) if (m.value) applyDriftValue(deps, m.value, m.offset);
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
