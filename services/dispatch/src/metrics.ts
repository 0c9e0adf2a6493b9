import { createCounters, histogram, LATENCY_BUCKETS, type CounterSpecs, type Registry } from '@pitwall/common';

/** Counter names of the dispatch service (exported on /metrics of the health port). */
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

/** HELP texts and labels of the counters. */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.consumed]: { help: 'Incident records read from the incidents topic.' },
  [METRICS.tombstones]: { help: 'Tombstones (deleted incidents) read.' },
  [METRICS.alertsPublished]: { help: 'Alerts published to cars (vehicles/{id}/alerts) and acknowledged by the broker (PUBACK).' },
  [METRICS.alertsSkipped]: { help: 'Alerting changes not sent to the car, by reason: already-sent (a replay) or closed-since.', labels: ['reason'] },
  [METRICS.maintenancePublished]: { help: 'Retained maintenance states published (one per vehicle per batch).' },
  [METRICS.fleetPublished]: { help: 'Incident changes published to the fleet topic.' },
  [METRICS.deadLettered]: { help: 'Undecodable incident records sent to the dead-letter topic.' },
});

export const HISTOGRAMS = Object.freeze({
  windowEndToPuback: 'pitwall_dispatch_window_end_to_puback_seconds',
});

/** The dispatch service's metrics in `registry`. */
export function createDispatchMetrics(registry: Registry) {
  return {
    registry,
    counters: createCounters(COUNTERS, registry),
    windowEndToPuback: histogram(registry, {
      name: HISTOGRAMS.windowEndToPuback,
      help: "Seconds from the end of the anomalous window that opened or escalated an incident to the broker's PUBACK of the car's alert (wall clock minus the record's last_anomalous_window_end), by change.",
      buckets: LATENCY_BUCKETS,
      labelNames: ['change'],
    }),
  };
}

export { createCounters } from '@pitwall/common';
