/**
 * One chunk of `vehicle.features` records, as the scoring service handles it between fetch and
 * send: decode, dead-letter what can never be scored, skip partial windows, score the rest with
 * one predict call of the model served at that moment, and build the scores, alerts and dead
 * letters to produce. Nothing is sent here; the caller produces the outcome and only then commits
 * the chunk's offsets (scoring.ts). The benchmark times this same function.
 *
 * Every scored window also goes, in source order, through the stuck-sensor detector of its model's
 * route (stuck-sensor.ts in @pitwall/model; one per route, as windows of different sizes are
 * separate sequences). A window in which it calls a sensor stuck is anomalous even below the
 * threshold: its score record and alert keep the model's score and threshold, and list the stuck
 * sensors first as contributors (share 1/n each, the action says what is stuck), then the model's
 * own contributors if the model alerted too. Its per-vehicle state lives in this process only,
 * bounded (idle vehicles evicted, at most DEFAULT_MAX_VEHICLES): after a restart or a rebalance a
 * vehicle's sensors need the detector's warm-up again (WARMUP_MOVING windows of movement) before
 * they can be called stuck, so losing it delays stuck verdicts and never invents one. A
 * redelivered window (a batch retried after a failed send) gets the verdict it got the first time.
 *
 * With `input: 'readings'` (SCORING_INPUT=readings) the chunk is `vehicle.telemetry` instead: each
 * reading is scored on its own by the one served model, which declares a reading input
 * (model-input.ts in @pitwall/model); its score record names the reading's time as window_start
 * and window_end. Windowing's idle markers on that topic are passed over; there is no routing by
 * size, no partial window and no stuck-sensor detector (it needs a window's min and max).
 */
import type { KafkaMessage, Message } from 'kafkajs';
import {
  compileFeaturesReader,
  CONFLUENT_HEADER_BYTES,
  deadLetterHeaders,
  dispose,
  FEATURE_INDEX,
  FEATURE_NAMES,
  featureVectorOfDecoded,
  InvalidInputError,
  PitwallError,
  type AvroCodec,
  type Logger,
} from '@pitwall/common';
import type { ModelHolder, ModelSource } from './model-holder.js';
import { labelled, METRICS } from './metrics.js';
import { createSparseWindowNotice, createUnroutedNotice, type SkippedWindow } from './sparse-windows.js';
import { routeTable, windowSizeOf } from './routes.js';
import type { ShadowScorer, ShadowTally } from './shadow.js';
import type { DriftMonitor } from './drift.js';
import {
  createStuckSensorDetector,
  decideWindow,
  DEFAULT_MIN_COVERAGE,
  isAnomalous,
  modelWindow,
  scoreBatch,
  stuckWindowOf,
  stuckWindowOfRecord,
  type AlertRecord,
  type ScoreRecord,
} from '@pitwall/model';

export const SERVICE = 'scoring';

/** Index of the first NaN or infinity, or -1 (a loop: typed-array findIndex with a callback was the chunk's hottest line). */
function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return i;
  return -1;
}

function pickFeatures(features: Float32Array, pick: Int32Array): Float32Array {
  const out = new Float32Array(pick.length);
  for (let i = 0; i < pick.length; i++) out[i] = features[pick[i]!]!;
  return out;
}

/**
 * Where each of a model's features sits in FEATURE_NAMES (null when one is not a window feature),
 * and whether that is FEATURE_NAMES in its order (every model trained here), once per feature list.
 */
const layouts = new WeakMap<readonly string[], { pick: Int32Array | null; standard: boolean }>();
function layoutOf(features: readonly string[]): { pick: Int32Array | null; standard: boolean } {
  let known = layouts.get(features);
  if (known === undefined) {
    const at = features.map((f) => FEATURE_INDEX.get(f) ?? -1);
    const pick = at.includes(-1) ? null : Int32Array.from(at);
    known = { pick, standard: pick !== null && pick.length === FEATURE_NAMES.length && pick.every((p, i) => p === i) };
    layouts.set(features, known);
  }
  return known;
}

/**
 * A decoded `vehicle.features` record (schemas/features/v2.avsc, which reads v1 too): identity, the
 * window definition when windowing named it (null in v1 records), one double per feature.
 */
export interface FeatureRecord {
  vehicle_id: string;
  window_start: number;
  window_end: number;
  event_count: number;
  window_size_ms?: number | null;
  window_advance_ms?: number | null;
  [feature: string]: number | string | null | undefined;
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

/** What a scoring deployment consumes: window features (vehicle.features) or single readings (vehicle.telemetry). */
export type ScoringInput = 'windows' | 'readings';

/** The header windowing's idle markers carry on vehicle.telemetry (services/windowing/src/windowing.ts). */
const CONTROL_HEADER = 'pitwall.control';

export interface ChunkScorerDeps {
  /** Decodes the consumed records: features (windows) or telemetry (readings). */
  featuresCodec: AvroCodec<FeatureRecord>;
  /** Default windows. */
  input?: ScoringInput | undefined;
  alertsCodec: AvroCodec<AlertRecord>;
  scoresCodec: AvroCodec<ScoreRecord>;
  /** Read once per chunk; a holder also remembers the chunk's vectors for warm-ups. */
  source: ModelSource | ModelHolder;
  /**
   * Further served models (MODEL_NAME's other names), each scoring the windows of the size its
   * metadata declares (routes.ts); the shadow shadows `source` only.
   */
  routes?: readonly (ModelSource | ModelHolder)[] | undefined;
  /** Named in dead-letter headers as the records' source. */
  featuresTopic: string;
  minCoverage?: number | undefined;
  counters: { inc(name: string, by?: number): void };
  log: Logger;
  now: () => number;
  shadow?: Pick<ShadowScorer, 'observe'> | undefined;
  /** Counts every scored window's raw features against its model's drift reference (drift.ts). */
  drift?: Pick<DriftMonitor, 'observe'> | undefined;
}

export type ChunkScorer = (partition: number, messages: readonly KafkaMessage[]) => Promise<ChunkOutcome>;

export function createChunkScorer(deps: ChunkScorerDeps): ChunkScorer {
  const { featuresCodec, alertsCodec, scoresCodec, source, counters, log, now, shadow } = deps;
  const sources = [source, ...(deps.routes ?? [])];
  const sparse = sources.map(() => createSparseWindowNotice(log, now));
  const unrouted = createUnroutedNotice(log, now);
  const stuckDetectors = sources.map(() => createStuckSensorDetector());

  const deadLetter = (msg: KafkaMessage, partition: number, reason: string, message: string): Message => {
    log.warn('record dead-lettered', { reason, message, partition, offset: msg.offset });
    return {
      key: msg.key,
      value: msg.value,
      headers: deadLetterHeaders(SERVICE, { reason, message }, { topic: deps.featuresTopic, partition: String(partition), offset: msg.offset }, now()),
    };
  };

  const readings = deps.input === 'readings';
  /** A decoded reading as the window of one instant: its scores and alerts name [ts, ts]. */
  const asWindow = (record: FeatureRecord): FeatureRecord => {
    const ts = (record as unknown as { ts: number }).ts;
    return { ...record, window_start: ts, window_end: ts, event_count: 1, window_size_ms: null };
  };

  return async function scoreChunk(partition, messages) {
    const deadLetters: Message[] = [];
    // `features`: the window's 108 features in FEATURE_NAMES order when read by the direct reader
    // (features-reader.ts in common); then `record` holds the header fields only.
    const decoded: { msg: KafkaMessage; record: FeatureRecord; features: Float32Array | undefined }[] = [];
    // One buffer for the chunk's feature vectors, a view each (a typed array per window cost more).
    const width = FEATURE_NAMES.length;
    const featureBuffer = readings ? undefined : new Float32Array(messages.length * width);
    let used = 0;
    for (const msg of messages) {
      // Windowing's idle markers (no value) are control records, not readings.
      if (readings && msg.headers?.[CONTROL_HEADER] !== undefined) continue;
      if (!msg.value || msg.value.length === 0) {
        deadLetters.push(deadLetter(msg, partition, 'payload.empty', 'record has no value'));
        continue;
      }
      let record: FeatureRecord;
      try {
        if (!readings) {
          const writer = featuresCodec.writerSchema(msg.value);
          const reader = compileFeaturesReader(writer instanceof Promise ? await writer : writer);
          const features = reader && featureBuffer!.subarray(used * width, (used + 1) * width);
          const header = reader?.(msg.value.subarray(CONFLUENT_HEADER_BYTES), features!);
          if (header) {
            used++;
            decoded.push({ msg, record: header as FeatureRecord, features: features! });
            continue;
          }
        }
        record = await featuresCodec.decode(msg.value);
      } catch (err) {
        // avsc throws plain errors for bodies that do not match the schema: those never decode.
        const e = err instanceof PitwallError ? err : new InvalidInputError('avro.decode', `cannot decode ${readings ? 'telemetry' : 'features'} record: ${(err as Error).message}`);
        const d = dispose(e);
        if (d.action === 'retry') throw e;
        deadLetters.push(deadLetter(msg, partition, d.reason, d.message));
        continue;
      }
      decoded.push({ msg, record: readings ? asWindow(record) : record, features: undefined });
    }
    // From here to the send everything is synchronous: the whole chunk is scored by the models
    // served at this moment, even if a swap is offered meanwhile.
    const served = sources.map((s) => s.current());
    const route = routeTable(served.map((m) => m.metadata));
    const groups = served.map((m) => ({
      meta: m.metadata,
      window: modelWindow(m.metadata, deps.minCoverage ?? DEFAULT_MIN_COVERAGE),
      ...layoutOf(m.metadata.features),
      records: [] as FeatureRecord[],
      vectors: [] as Float32Array[],
      /** Per record, its 108 features in FEATURE_NAMES order when known (the stuck-sensor detector's input). */
      standardVectors: [] as (Float32Array | undefined)[],
      skipped: [] as SkippedWindow[],
    }));
    const unroutedSizes: number[] = [];
    // Per scored record, in source order: its model and its place in that model's batch.
    const order: Array<[group: number, index: number]> = [];
    for (const { msg, record, features } of decoded) {
      const size = windowSizeOf(record);
      // Readings all go to the one served model (config allows one name in this mode).
      const g = readings ? 0 : route.get(size);
      if (g === undefined) {
        // No served model declares this window: counted (per size) and reported, not scored.
        counters.inc(labelled(METRICS.windowsUnrouted, { window_ms: String(size) }));
        unroutedSizes.push(size);
        continue;
      }
      const group = groups[g]!;
      let vector: Float32Array;
      if (features !== undefined && group.pick !== null) {
        vector = group.standard ? features : pickFeatures(features, group.pick);
      } else if (features !== undefined) {
        // validateMetadata lets a window model take window features only. One that took another
        // would find it missing from the generic decode too (the reader schema has only these):
        // the same dead letter.
        const missing = group.meta.features.find((f) => !FEATURE_INDEX.has(f));
        deadLetters.push(deadLetter(msg, partition, 'features.missing', `feature ${missing} missing from record`));
        continue;
      } else {
        try {
          vector = featureVectorOfDecoded(record, group.meta.features);
        } catch (err) {
          deadLetters.push(deadLetter(msg, partition, 'features.missing', (err as Error).message));
          continue;
        }
      }
      if (!readings && record.event_count < group.window.minReadings) {
        // A car that just started or stopped fills only part of a window; its aggregates are not
        // comparable to the full windows the model was trained on, so it is not scored.
        counters.inc(METRICS.windowsPartial);
        group.skipped.push({ vehicleId: record.vehicle_id, events: record.event_count });
        continue;
      }
      const bad = firstNonFinite(vector);
      if (bad >= 0) {
        deadLetters.push(deadLetter(msg, partition, 'features.non_finite', `feature ${group.meta.features[bad]} is ${vector[bad]}`));
        continue;
      }
      order.push([g, group.records.length]);
      group.records.push(record);
      group.vectors.push(vector);
      group.standardVectors.push(features ?? (group.standard ? vector : undefined));
    }
    const results = groups.map((group, g) => scoreBatch(served[g]!.model, group.meta, group.vectors));
    groups.forEach((group, g) => {
      sparse[g]?.observe({ skipped: group.skipped, scored: results[g]!.length, minEvents: group.window.minReadings, window: group.meta.window });
      // A holder remembers the vectors for warm-ups of candidates; a fixed model has nothing to remember.
      (sources[g] as Partial<ModelHolder>).remember?.(group.vectors);
      deps.drift?.observe(
        group.meta,
        group.records.map((r) => r.vehicle_id),
        group.vectors,
      );
    });
    unrouted.observe(
      unroutedSizes,
      groups.map((group) => group.meta.window.sizeMs),
    );
    deadLetters.sort((a, b) => Number(BigInt(String(a.headers!['pitwall.source.offset'])) - BigInt(String(b.headers!['pitwall.source.offset']))));
    const createdAt = now();
    const alerts: Message[] = [];
    const alertWindowEnds: number[] = [];
    const scores: Message[] = [];
    // The first model's decisions, in its batch order, for the shadow (which shadows the first model only).
    const anomalous: boolean[] = new Array<boolean>(groups[0]!.records.length);
    for (const [g, i] of order) {
      const record = groups[g]!.records[i]!;
      const meta = groups[g]!.meta;
      const s = results[g]![i]!;
      // The shadow compares the models, so it sees the model's own decision.
      if (g === 0) anomalous[i] = isAnomalous(s, meta);
      // The stuck-sensor detector reads a window's min and max: a reading has none. From the vector
      // when it is in FEATURE_NAMES order (no second read of the record by name).
      const standardVector = groups[g]!.standardVectors[i];
      const window = readings
        ? undefined
        : standardVector !== undefined
          ? stuckWindowOf(record.vehicle_id, record.window_start, record.window_end, record.event_count, standardVector)
          : stuckWindowOfRecord(record);
      const stuck = window === undefined ? [] : stuckDetectors[g]!.observe(window);
      for (const x of stuck) counters.inc(labelled(METRICS.stuckSensorWindows, { sensor: x.sensor }));
      const { score, alert } = decideWindow(record, s, meta, stuck, createdAt);
      scores.push({ key: record.vehicle_id, value: scoresCodec.encode(score) });
      if (!alert) continue;
      alerts.push({ key: record.vehicle_id, value: alertsCodec.encode(alert) });
      alertWindowEnds.push(record.window_end);
    }
    const scored = order.length;
    return { alerts, alertWindowEnds, scores, deadLetters, scored, shadow: shadow?.observe(groups[0]!.meta, anomalous, groups[0]!.vectors) };
  };
}
