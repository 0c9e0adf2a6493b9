/**
 * One chunk of `vehicle.features` records, as the scoring service handles it between fetch and
 * send: decode, dead-letter what can never be scored, skip partial windows, score the rest with
 * one predict call of the model served at that moment, and build the scores, alerts and dead
 * letters to produce. Nothing is sent here; the caller produces the outcome and only then commits
 * the chunk's offsets (scoring.ts). The benchmark times this same function.
 */
import type { KafkaMessage, Message } from 'kafkajs';
import { deadLetterHeaders, dispose, featureVector, InvalidInputError, PitwallError, type AvroCodec, type Logger } from '@pitwall/common';
import type { ModelHolder, ModelSource } from './model-holder.js';
import { METRICS } from './metrics.js';
import { createSparseWindowNotice, type SkippedWindow } from './sparse-windows.js';
import type { ShadowScorer, ShadowTally } from './shadow.js';
import { buildAlert, buildScore, DEFAULT_MIN_COVERAGE, minEventsFor, scoreBatch, type AlertRecord, type ScoreRecord } from '@pitwall/model';

export const SERVICE = 'scoring';

/** A decoded `vehicle.features` record (schemas/features/v1.avsc): identity plus one double per feature. */
export interface FeatureRecord {
  vehicle_id: string;
  window_start: number;
  window_end: number;
  event_count: number;
  [feature: string]: number | string;
}

/** Result of one chunk: what to produce, before its offsets may be committed. */
export interface ChunkOutcome {
  alerts: Message[];
  scores: Message[];
  /** In source offset order. */
  deadLetters: Message[];
  scored: number;
  /** window_end of each alert, in the order of `alerts`. */
  alertWindowEnds: number[];
  shadow: ShadowTally | undefined;
}

export interface ChunkScorerDeps {
  featuresCodec: AvroCodec<FeatureRecord>;
  alertsCodec: AvroCodec<AlertRecord>;
  scoresCodec: AvroCodec<ScoreRecord>;
  /** Read once per chunk; a holder also remembers the chunk's vectors for warm-ups. */
  source: ModelSource | ModelHolder;
  /** Named in dead-letter headers as the records' source. */
  featuresTopic: string;
  minCoverage?: number | undefined;
  counters: { inc(name: string, by?: number): void };
  log: Logger;
  now: () => number;
  shadow?: Pick<ShadowScorer, 'observe'> | undefined;
}

export type ChunkScorer = (partition: number, messages: readonly KafkaMessage[]) => Promise<ChunkOutcome>;

export function createChunkScorer(deps: ChunkScorerDeps): ChunkScorer {
  const { featuresCodec, alertsCodec, scoresCodec, source, counters, log, now, shadow } = deps;
  const sparse = createSparseWindowNotice(log, now);

  const deadLetter = (msg: KafkaMessage, partition: number, reason: string, message: string): Message => {
    log.warn('record dead-lettered', { reason, message, partition, offset: msg.offset });
    return {
      key: msg.key,
      value: msg.value,
      headers: deadLetterHeaders(SERVICE, { reason, message }, { topic: deps.featuresTopic, partition: String(partition), offset: msg.offset }, now()),
    };
  };

  return async function scoreChunk(partition, messages) {
    const deadLetters: Message[] = [];
    const decoded: { msg: KafkaMessage; record: FeatureRecord }[] = [];
    for (const msg of messages) {
      if (!msg.value || msg.value.length === 0) {
        deadLetters.push(deadLetter(msg, partition, 'payload.empty', 'record has no value'));
        continue;
      }
      let record: FeatureRecord;
      try {
        record = await featuresCodec.decode(msg.value);
      } catch (err) {
        // avsc throws plain errors for bodies that do not match the schema: those never decode.
        const e = err instanceof PitwallError ? err : new InvalidInputError('avro.decode', `cannot decode features record: ${(err as Error).message}`);
        const d = dispose(e);
        if (d.action === 'retry') throw e;
        deadLetters.push(deadLetter(msg, partition, d.reason, d.message));
        continue;
      }
      decoded.push({ msg, record });
    }
    // From here to the send everything is synchronous: the whole chunk is scored by the model
    // served at this moment, even if a swap is offered meanwhile.
    const served = source.current();
    const meta = served.metadata;
    const minEvents = minEventsFor(meta, deps.minCoverage ?? DEFAULT_MIN_COVERAGE);
    const records: FeatureRecord[] = [];
    const vectors: Float32Array[] = [];
    const skipped: SkippedWindow[] = [];
    for (const { msg, record } of decoded) {
      let vector: Float32Array;
      try {
        vector = featureVector(record, meta.features);
      } catch (err) {
        deadLetters.push(deadLetter(msg, partition, 'features.missing', (err as Error).message));
        continue;
      }
      if (record.event_count < minEvents) {
        // A car that just started or stopped fills only part of a window; its aggregates are not
        // comparable to the full windows the model was trained on, so it is not scored.
        counters.inc(METRICS.windowsPartial);
        skipped.push({ vehicleId: record.vehicle_id, events: record.event_count });
        continue;
      }
      const bad = vector.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        deadLetters.push(deadLetter(msg, partition, 'features.non_finite', `feature ${meta.features[bad]} is ${vector[bad]}`));
        continue;
      }
      records.push(record);
      vectors.push(vector);
    }
    const scored = scoreBatch(served.model, meta, vectors);
    sparse.observe({ skipped, scored: scored.length, minEvents, window: meta.window });
    if ('remember' in source) source.remember(vectors);
    deadLetters.sort((a, b) => Number(BigInt(String(a.headers!['pitwall.source.offset'])) - BigInt(String(b.headers!['pitwall.source.offset']))));
    const createdAt = now();
    const alerts: Message[] = [];
    const alertWindowEnds: number[] = [];
    const scores: Message[] = [];
    const anomalous: boolean[] = [];
    scored.forEach((s, i) => {
      const record = records[i]!;
      const score = buildScore(record, s, meta, createdAt);
      anomalous.push(score.anomalous);
      scores.push({ key: record.vehicle_id, value: scoresCodec.encode(score) });
      if (!score.anomalous) return;
      const alert = buildAlert(record, s, meta, createdAt);
      alerts.push({ key: record.vehicle_id, value: alertsCodec.encode(alert) });
      alertWindowEnds.push(record.window_end);
    });
    return { alerts, alertWindowEnds, scores, deadLetters, scored: scored.length, shadow: shadow?.observe(meta, anomalous, vectors) };
  };
}
