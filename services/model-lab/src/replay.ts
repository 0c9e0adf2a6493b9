/**
 * Which alerts a model version would have raised for given `vehicle.features` records: the pure
 * part of `npm run replay`, shared with evaluate (scoreVectors).
 *
 * Same rules as the scoring service: records with fewer events than the model's window needs at
 * `minCoverage` are not scored; a record missing a feature or holding a non-finite one is reported
 * as invalid (the service dead-letters it); a window alerts by the serving rule (decideWindow: score >
 * threshold, or the stuck-sensor detector, run over the records in the order given, calls a sensor
 * stuck). Alerts have created_at = window_end (not the clock), so output depends only on the input.
 */
import { featureVector, windowSizeOf, type AlertRecord } from '@pitwall/common';
import {
  createStuckSensorDetector,
  decideWindow,
  DEFAULT_MIN_COVERAGE,
  minEventsFor,
  type ModelMetadata,
  scoreBatch,
  type Scored,
  type ServableModel,
  stuckWindowOfRecord,
  type WindowKey,
} from '@pitwall/model';

/** Rows per predict call. Fixed, so the same input is always scored in the same batches. */
export const SCORE_CHUNK = 1024;

/** scoreBatch over any number of vectors, in fixed chunks. */
export function scoreVectors(model: ServableModel, meta: Pick<ModelMetadata, 'features' | 'normalization'>, vectors: readonly Float32Array[]): Scored[] {
  const out: Scored[] = [];
  for (let i = 0; i < vectors.length; i += SCORE_CHUNK) out.push(...scoreBatch(model, meta, vectors.slice(i, i + SCORE_CHUNK)));
  return out;
}

/** A decoded features record. */
export interface FeatureRecordLike extends WindowKey {
  event_count: number;
  /** features v2: the window definition's size; null or absent in v1 records. */
  window_size_ms?: number | null;
  [feature: string]: unknown;
}

/** Where a record was read from. */
export interface SourcePosition {
  partition: number;
  offset: string;
}

export interface ReplayInput extends SourcePosition {
  record: FeatureRecordLike;
}

export interface ReplayAlert {
  source: SourcePosition;
  alert: AlertRecord;
}

export interface ReplayOutcome {
  alerts: ReplayAlert[];
  /** Records scored (alerting or not). */
  scored: number;
  /** Windows below the coverage the model needs: not scored. */
  partial: number;
  /** Windows of another size than the model's: scoring would route them to another model. */
  otherWindows: number;
  /** Scored windows in which the stuck-sensor detector called a sensor stuck (they alert). */
  stuck: number;
  invalid: Array<SourcePosition & { reason: string }>;
}

/**
 * Scores records in the given order (callers pass partition, offset order) and returns the alerts
 * in that order.
 */
export function replayAlerts(
  model: ServableModel,
  meta: Pick<ModelMetadata, 'name' | 'version' | 'threshold' | 'features' | 'normalization' | 'window' | 'input'>,
  inputs: readonly ReplayInput[],
  opts: { minCoverage?: number } = {},
): ReplayOutcome {
  if (meta.input?.kind === 'reading') throw new RangeError(`${meta.name} v${meta.version} declares a reading input; replay scores vehicle.features windows`);
  const minEvents = minEventsFor(meta, opts.minCoverage ?? DEFAULT_MIN_COVERAGE);
  const kept: ReplayInput[] = [];
  const vectors: Float32Array[] = [];
  const invalid: ReplayOutcome['invalid'] = [];
  let partial = 0;
  let otherWindows = 0;
  for (const input of inputs) {
    // Scoring routes a window only to the model declaring its size (scoring/routes.ts).
    if (windowSizeOf(input.record) !== meta.window.sizeMs) {
      otherWindows++;
      continue;
    }
    let vector: Float32Array;
    try {
      vector = featureVector(input.record, meta.features);
    } catch (err) {
      invalid.push({ partition: input.partition, offset: input.offset, reason: (err as Error).message });
      continue;
    }
    if (input.record.event_count < minEvents) {
      partial++;
      continue;
    }
    const bad = vector.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      invalid.push({ partition: input.partition, offset: input.offset, reason: `feature ${meta.features[bad]} is ${vector[bad]}` });
      continue;
    }
    kept.push(input);
    vectors.push(vector);
  }
  const scored = scoreVectors(model, meta, vectors);
  const alerts: ReplayAlert[] = [];
  // One detector over the records in the given order, as scoring runs one per model route.
  const detector = createStuckSensorDetector();
  let stuck = 0;
  scored.forEach((s, i) => {
    const { partition, offset, record } = kept[i]!;
    const verdict = detector.observe(stuckWindowOfRecord(record));
    if (verdict.length) stuck++;
    const { alert } = decideWindow(record, s, meta, verdict, record.window_end);
    if (alert) alerts.push({ source: { partition, offset }, alert });
  });
  return { alerts, scored: scored.length, partial, otherWindows, invalid, stuck };
}

/** One JSON line per alert: the alert record plus where its window was read. */
export function alertJsonLine(a: ReplayAlert): string {
  return JSON.stringify({ ...a.alert, source: a.source });
}

/** A fixed-width table of alerts, for people. */
export function formatAlertTable(alerts: readonly ReplayAlert[]): string {
  const head = ['vehicle', 'window start (UTC)', 'score', 'threshold', 'top contributor', 'share', 'partition:offset', 'alert_id'];
  const rows = alerts.map(({ alert, source }) => {
    const top = alert.contributors[0];
    return [
      alert.vehicle_id,
      new Date(alert.window_start).toISOString(),
      alert.score.toPrecision(5),
      String(alert.threshold),
      top ? top.sensor : '-',
      top ? `${(100 * top.share).toFixed(0)}%` : '-',
      `${source.partition}:${source.offset}`,
      alert.alert_id,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
