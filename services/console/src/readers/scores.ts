/**
 * vehicle.scores (Avro ScoreRecord keyed by vehicle_id), read from `lookbackMs` ago (by record
 * timestamp) and then followed, for each vehicle's latest score. Own throw-away group, nothing
 * committed: the positions are kept here, so a consumer restarted after a crash resumes where it
 * was rather than at the lookback start.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { runFromPositions, watchConsumer, watchConsumerLag, type AvroCodec, type Counters, type Logger, type Readiness, type Registry, type ScoreRecord, type SeekTarget } from '@pitwall/common';
import type { Live } from '../live.js';
import { METRICS } from '../metrics.js';
import type { FleetView } from '../state.js';

export interface ScoreReaderDeps {
  topic: string;
  groupIdPrefix: string;
  lookbackMs: number;
  codec: AvroCodec<ScoreRecord>;
  fleet: Pick<FleetView, 'applyScore'>;
  live: Pick<Live, 'vehicleChanged'>;
  now: () => number;
  counters: Counters;
  log: Logger;
  readiness: Readiness;
  metrics: Registry;
}

export function createScoreReader(kafka: Kafka, deps: ScoreReaderDeps) {
  const { topic, counters, log } = deps;
  let consumer: Consumer | undefined;
  let up = false;

  const onScore = async (value: Buffer, offset: string): Promise<void> => {
    counters.inc(METRICS.scoresRead);
    try {
      const score = await deps.codec.decode(value);
      if (deps.fleet.applyScore(score)) deps.live.vehicleChanged(score.vehicle_id);
    } catch (err) {
      counters.inc(METRICS.undecodable, 1, 'score');
      log.debug('undecodable score record skipped', { offset, err });
    }
  };

  return {
    /** Resolves once the consumer runs. */
    async start(): Promise<void> {
      const c = kafka.consumer({ groupId: `${deps.groupIdPrefix}-scores-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      consumer = c;
      watchConsumer(deps.readiness, c, 'scores consumer');
      watchConsumerLag(deps.metrics, c);
      c.on(c.events.CRASH, ({ payload }) => {
        if (!payload.restart) up = false;
        log.warn('scores consumer crashed', { err: payload.error, restart: payload.restart });
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
          for (const m of batch.messages) if (m.value) await onScore(m.value, m.offset);
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
