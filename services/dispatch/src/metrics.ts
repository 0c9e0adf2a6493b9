/** Counter names of the dispatch service (exported on /metrics once Prometheus support lands). */
export const METRICS = Object.freeze({
  consumed: 'pitwall_dispatch_incidents_consumed_total',
  tombstones: 'pitwall_dispatch_incident_tombstones_total',
  alertsPublished: 'pitwall_dispatch_alerts_published_total',
  /** Labelled with reason already-sent or closed-since. */
  alertsSkipped: 'pitwall_dispatch_alerts_skipped_total',
  maintenancePublished: 'pitwall_dispatch_maintenance_states_published_total',
  fleetPublished: 'pitwall_dispatch_fleet_messages_published_total',
  deadLettered: 'pitwall_dispatch_dead_lettered_total',
});

export { createCounters } from '@pitwall/common';
