/** Counter names of the windowing service (exported on /metrics once Prometheus support lands). */
export const METRICS = Object.freeze({
  consumed: 'pitwall_windowing_events_consumed_total',
  duplicates: 'pitwall_windowing_duplicate_events_total',
  late: 'pitwall_windowing_late_events_total',
  idleMarkers: 'pitwall_windowing_idle_markers_appended_total',
  idleClosed: 'pitwall_windowing_windows_closed_by_idle_total',
  ignitionClosed: 'pitwall_windowing_windows_closed_by_ignition_off_total',
  replayed: 'pitwall_windowing_replayed_events_total',
  emitted: 'pitwall_windowing_windows_emitted_total',
  deadLettered: 'pitwall_windowing_dead_lettered_total',
  transactionsAborted: 'pitwall_windowing_transactions_aborted_total',
});

export { createCounters } from '@pitwall/common';
