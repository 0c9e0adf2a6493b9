/** Counter names of the simulator, in one place; plain in-memory counters until /metrics exists. */
export const METRICS = Object.freeze({
  ticks: 'simulator_ticks_total',
  published: 'simulator_published_total',
  publishFailed: 'simulator_publish_failed_total',
  /** Readings sent again: the connection dropped before their PUBACK, or no subscriber matched. */
  resent: 'simulator_publish_resent_total',
  failuresInjected: 'simulator_failures_injected_total',
} as const);

/** Counters of the cars' inbox (inbox.ts): alerts in, receipts out. */
export const INBOX_METRICS = Object.freeze({
  alertsReceived: 'simulator_alerts_received_total',
  alertDuplicates: 'simulator_alert_duplicates_total',
  receiptsSent: 'simulator_receipts_sent_total',
  receiptsFailed: 'simulator_receipts_failed_total',
  maintenanceStates: 'simulator_maintenance_states_received_total',
} as const);

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

export { createCounters, type Counters } from '@pitwall/common';
