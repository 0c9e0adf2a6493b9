/**
 * vehicle.scores (Avro ScoreRecord keyed by vehicle_id), read from `lookbackMs` ago (by record
 * timestamp) and then followed, for each vehicle's latest score (lookback.ts).
 */
import type { Kafka } from 'kafkajs';
import type { AvroCodec, Counters, Logger, ScoreRecord } from '@pitwall/common';
import type { Live } from '../live.js';
import { METRICS } from '../metrics.js';
import type { FleetView } from '../state.js';
import { createLookbackReader, type LookbackReader, type LookbackReaderDeps } from './lookback.js';

export interface ScoreReaderDeps extends LookbackReaderDeps {
  codec: AvroCodec<ScoreRecord>;
  fleet: Pick<FleetView, 'applyScore'>;
  live: Pick<Live, 'vehicleChanged'>;
  counters: Counters;
  log: Logger;
}

export function createScoreReader(kafka: Kafka, deps: ScoreReaderDeps): LookbackReader {
  const { counters, log } = deps;

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

  return createLookbackReader(kafka, deps, 'scores', onScore);
}
