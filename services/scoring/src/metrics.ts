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
});

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export interface Counters {
  inc(name: MetricName, by?: number): void;
  get(name: MetricName): number;
  snapshot(): Record<MetricName, number>;
}

export function createCounters(): Counters {
  const values = new Map<MetricName, number>(Object.values(METRICS).map((n) => [n, 0]));
  return {
    inc(name, by = 1) {
      values.set(name, (values.get(name) ?? 0) + by);
    },
    get: (name) => values.get(name) ?? 0,
    snapshot: () => Object.fromEntries(values) as Record<MetricName, number>,
  };
}
