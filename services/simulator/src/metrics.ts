import type { CounterSpecs } from '@pitwall/common';

/** Counter names of the simulator, in one place (exported on /metrics of its health port). */
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

/** HELP texts of the simulator's counters. */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.ticks]: { help: 'Ticks published (one reading per car each).' },
  [METRICS.published]: { help: 'Readings acknowledged by the broker (PUBACK for QoS 1).' },
  [METRICS.publishFailed]: { help: 'Readings given up (e.g. larger than the broker accepts).' },
  [METRICS.resent]: { help: 'Readings sent again: the connection dropped before their PUBACK, or no subscriber matched (reason 16).' },
  [METRICS.failuresInjected]: { help: 'Injected failures whose onset was published.' },
});

/** HELP texts of the inbox's counters. */
export const INBOX_COUNTERS: CounterSpecs = Object.freeze({
  [INBOX_METRICS.alertsReceived]: { help: 'Alerts received by the cars (first copy of each incident revision).' },
  [INBOX_METRICS.alertDuplicates]: { help: 'Repeated alerts (same incident and revision), ignored.' },
  [INBOX_METRICS.receiptsSent]: { help: 'Receipts for alerts acknowledged by the broker.' },
  [INBOX_METRICS.receiptsFailed]: { help: 'Receipts that could not be sent.' },
  [INBOX_METRICS.maintenanceStates]: { help: 'Retained maintenance states received.' },
});

export { createCounters, type Counters } from '@pitwall/common';
