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
});

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** `name{a="x",b="y"}`: a counter key with Prometheus labels. */
export function labelled(name: MetricName, labels: Readonly<Record<string, string>>): string {
  return `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`)
    .join(',')}}`;
}

export { createCounters, type Counters } from '@pitwall/common';
