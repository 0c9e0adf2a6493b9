/**
 * model.drift (JSON drift records of the scoring replicas, compacted; drift.ts), read from
 * `lookbackMs` ago (by record timestamp) and then followed, into the drift view. Own throw-away
 * group, nothing committed (lookback.ts).
 */
import type { Kafka } from 'kafkajs';
import type { Counters, Logger } from '@pitwall/common';
import type { DriftView } from '../drift.js';
import { METRICS } from '../metrics.js';
import { createLookbackReader, type LookbackReader, type LookbackReaderDeps } from './lookback.js';

export interface DriftReaderDeps extends LookbackReaderDeps {
  drift: Pick<DriftView, 'apply'>;
  counters: Counters;
  log: Logger;
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

export function createDriftReader(kafka: Kafka, deps: DriftReaderDeps): LookbackReader {
  return createLookbackReader(kafka, deps, 'drift', (value, offset) => applyDriftValue(deps, value, offset));
}
