/**
 * Counter names of the scoring service, in one place (Prometheus style, so /metrics can expose
 * them later unchanged). For now they are plain in-process counters reported by stats().
 */
export const METRICS = Object.freeze({
  batches: 'pitwall_scoring_batches_total',
  recordsIn: 'pitwall_scoring_records_in_total',
  windowsScored: 'pitwall_scoring_windows_scored_total',
  windowsPartial: 'pitwall_scoring_partial_windows_skipped_total',
  alertsProduced: 'pitwall_scoring_alerts_produced_total',
  deadLettered: 'pitwall_scoring_dead_lettered_total',
  batchFailures: 'pitwall_scoring_batch_failures_total',
  modelSwaps: 'pitwall_scoring_model_swaps_total',
  modelsRefused: 'pitwall_scoring_models_refused_total',
});

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export { createCounters, type Counters } from '@pitwall/common';
