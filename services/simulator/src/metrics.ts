/** Counter names of the simulator, in one place; plain in-memory counters until /metrics exists. */
export const METRICS = Object.freeze({
  ticks: 'simulator_ticks_total',
  published: 'simulator_published_total',
  publishFailed: 'simulator_publish_failed_total',
  failuresInjected: 'simulator_failures_injected_total',
} as const);

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export { createCounters, type Counters } from '@pitwall/common';
