/** Counter names of the simulator, in one place; plain in-memory counters until /metrics exists. */
export const METRICS = Object.freeze({
  ticks: 'simulator_ticks_total',
  published: 'simulator_published_total',
  publishFailed: 'simulator_publish_failed_total',
  failuresInjected: 'simulator_failures_injected_total',
} as const);

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export interface Counters {
  inc(name: MetricName, by?: number): void;
  get(name: MetricName): number;
  snapshot(): Record<MetricName, number>;
}

export function createCounters(): Counters {
  const values = Object.fromEntries(Object.values(METRICS).map((n) => [n, 0])) as Record<MetricName, number>;
  return {
    inc(name, by = 1) {
      values[name] += by;
    },
    get: (name) => values[name],
    snapshot: () => ({ ...values }),
  };
}
