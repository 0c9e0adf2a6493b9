import { DURATION_BUCKETS, histogram, LATENCY_BUCKETS, type CounterSpecs, type Registry } from '@pitwall/common';

/**
 * Counter names of the scoring service, in one place (exported on /metrics of the health port,
 * and reported by stats()).
 */
export const METRICS = Object.freeze({
  batches: 'pitwall_scoring_batches_total',
  recordsIn: 'pitwall_scoring_records_in_total',
  windowsScored: 'pitwall_scoring_windows_scored_total',
  windowsPartial: 'pitwall_scoring_partial_windows_skipped_total',
  /** Labelled {window_ms}: windows of a size no served model declares (routes.ts). */
  windowsUnrouted: 'pitwall_scoring_windows_unrouted_total',
  alertsProduced: 'pitwall_scoring_alerts_produced_total',
  scoresProduced: 'pitwall_scoring_scores_produced_total',
  deadLettered: 'pitwall_scoring_dead_lettered_total',
  batchFailures: 'pitwall_scoring_batch_failures_total',
  modelSwaps: 'pitwall_scoring_model_swaps_total',
  modelsRefused: 'pitwall_scoring_models_refused_total',
  /** model.updates events applied by this replica (after its start-up catch-up). */
  modelUpdatesApplied: 'pitwall_scoring_model_updates_applied_total',
  modelUpdatesInvalid: 'pitwall_scoring_model_updates_invalid_total',
  /** Labelled {role="active"|"shadow",version}: windows each model scored while a shadow served. */
  shadowWindows: 'pitwall_scoring_shadow_windows_total',
  /** Labelled {role,version}: windows above that model's threshold (the shadow's are never produced). */
  shadowAlerts: 'pitwall_scoring_shadow_alerts_total',
  /** Labelled {outcome="both"|"active_only"|"shadow_only"|"neither"}. */
  shadowAgreement: 'pitwall_scoring_shadow_agreement_total',
  /** Shadow predictions that threw or gave non-finite scores; active scoring is unaffected. */
  shadowFailures: 'pitwall_scoring_shadow_failures_total',
  shadowReports: 'pitwall_scoring_shadow_reports_total',
  /** Labelled {sensor}: windows in which the stuck-sensor detector called that sensor stuck. */
  stuckSensorWindows: 'pitwall_scoring_stuck_sensor_windows_total',
});

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** HELP texts and labels of the counters. */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.batches]: { help: 'Chunks of feature records scored and committed (at most SCORING_BATCH_SIZE records each).' },
  [METRICS.recordsIn]: { help: 'Feature records read in committed chunks.' },
  [METRICS.windowsScored]: { help: 'Windows scored by the served models (each window by the one declaring its size).' },
  [METRICS.windowsPartial]: { help: 'Windows with fewer readings than their model requires (metadata window.minReadings, else SCORING_MIN_COVERAGE of the expected ones): counted, not scored.' },
  [METRICS.windowsUnrouted]: { help: 'Windows of a size no served model declares (MODEL_NAME, metadata window.sizeMs): counted, not scored, by window size.', labels: ['window_ms'] },
  [METRICS.alertsProduced]: { help: 'Alerts produced to the alerts topic (windows over the threshold).' },
  [METRICS.scoresProduced]: { help: 'Score records produced (every scored window).' },
  [METRICS.deadLettered]: { help: 'Feature records that can never be scored, sent to the dead-letter topic.' },
  [METRICS.batchFailures]: { help: 'Batches that failed and are retried from the last committed offset.' },
  [METRICS.modelSwaps]: { help: 'Model versions swapped in (directory or model.updates).' },
  [METRICS.modelsRefused]: { help: 'Model versions refused by validation; the old one kept serving.' },
  [METRICS.modelUpdatesApplied]: { help: 'model.updates events applied by this replica after its start-up catch-up.' },
  [METRICS.modelUpdatesInvalid]: { help: 'model.updates events that could not be read.' },
  [METRICS.shadowWindows]: { help: 'Windows each model scored while a shadow version served, by role and version.', labels: ['role', 'version'] },
  [METRICS.shadowAlerts]: { help: "Windows above each model's threshold while a shadow served (the shadow's are never produced), by role and version.", labels: ['role', 'version'] },
  [METRICS.shadowAgreement]: { help: 'Windows by agreement of the active and shadow models: both, active_only, shadow_only, neither.', labels: ['outcome'] },
  [METRICS.shadowFailures]: { help: 'Shadow predictions that threw or gave non-finite scores (active scoring is unaffected).' },
  [METRICS.shadowReports]: { help: 'Shadow reports published to model.shadow.' },
  [METRICS.stuckSensorWindows]: { help: 'Windows in which the stuck-sensor detector called a sensor stuck (they alert), by sensor.', labels: ['sensor'] },
});

export const HISTOGRAMS = Object.freeze({
  chunkSeconds: 'pitwall_scoring_chunk_duration_seconds',
  windowEndToAlert: 'pitwall_scoring_window_end_to_alert_seconds',
});

/** The scoring service's histograms in `registry` (its counters are made in main.ts, shared with the model control). */
export function createScoringHistograms(registry: Registry) {
  return {
    chunkSeconds: histogram(registry, {
      name: HISTOGRAMS.chunkSeconds,
      help: 'Seconds to score one chunk of feature records (decode, one predict call, build scores and alerts), before its send.',
      buckets: DURATION_BUCKETS,
    }),
    windowEndToAlert: histogram(registry, {
      name: HISTOGRAMS.windowEndToAlert,
      help: "Seconds from an anomalous window's end to Kafka's acknowledgement of its alert (wall clock minus window_end).",
      buckets: LATENCY_BUCKETS,
    }),
  };
}

/** `name{a="x",b="y"}`: a counter key with Prometheus labels. */
export function labelled(name: MetricName, labels: Readonly<Record<string, string>>): string {
  return `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`)
    .join(',')}}`;
}

export { createCounters, type Counters } from '@pitwall/common';
