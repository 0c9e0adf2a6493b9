import { createCounters, histogram, LATENCY_BUCKETS, type CounterSpecs, type Registry } from '@pitwall/common';

/** Counter names of the windowing service (exported on /metrics of the health port). */
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
  transactionsCommitted: 'pitwall_windowing_transactions_committed_total',
});

/** HELP texts of the counters (counted when processed; a batch whose transaction aborts is processed again). */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.consumed]: { help: 'Telemetry readings decoded and applied to the windows.' },
  [METRICS.duplicates]: { help: 'Readings repeating a (vehicle, ts) already in an open window: counted once.' },
  [METRICS.late]: { help: 'Readings for a window already emitted, sent to the late topic.' },
  [METRICS.idleMarkers]: { help: 'Idle markers appended to quiet input partitions with open windows (WINDOWING_IDLE_MS).' },
  [METRICS.idleClosed]: { help: 'Windows closed by an idle marker.' },
  [METRICS.ignitionClosed]: { help: 'Windows closed by a reading with ignition_on false.' },
  [METRICS.replayed]: { help: 'Readings re-read after a resume that were already part of emitted windows.' },
  [METRICS.emitted]: { help: 'Feature records (closed windows) committed to the features topic.' },
  [METRICS.deadLettered]: { help: 'Undecodable telemetry records sent to the dead-letter topic.' },
  [METRICS.transactionsAborted]: { help: 'Batch transactions aborted; the partition resumes from its last commit.' },
  [METRICS.transactionsCommitted]: { help: 'Batch transactions committed (one per fetched batch of a partition).' },
});

export const HISTOGRAMS = Object.freeze({
  windowEndToEmit: 'pitwall_windowing_window_end_to_emit_seconds',
});

/** The windowing service's metrics in `registry`. */
export function createWindowingMetrics(registry: Registry) {
  return {
    registry,
    counters: createCounters(COUNTERS, registry),
    windowEndToEmit: histogram(registry, {
      name: HISTOGRAMS.windowEndToEmit,
      help: "Seconds from a window's end to its feature record's commit (wall clock at commit minus window_end; includes the grace and the wait for the car's next reading).",
      buckets: LATENCY_BUCKETS,
    }),
  };
}

export { createCounters } from '@pitwall/common';
