/** Counter names of the dispatch service (exported on /metrics once Prometheus support lands). */
export const METRICS = Object.freeze({
  consumed: 'pitwall_dispatch_alerts_consumed_total',
  published: 'pitwall_dispatch_mqtt_publications_total',
  skippedDuplicates: 'pitwall_dispatch_duplicate_alerts_skipped_total',
  deadLettered: 'pitwall_dispatch_dead_lettered_total',
});

export { createCounters } from '@pitwall/common';
