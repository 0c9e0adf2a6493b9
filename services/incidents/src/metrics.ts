import { createCounters, histogram, LATENCY_BUCKETS, type CounterSpecs, type Registry } from '@pitwall/common';

/** Counter names of the incidents service (exported on /metrics of the health port). */
export const METRICS = Object.freeze({
  scores: 'pitwall_incidents_scores_consumed_total',
  commands: 'pitwall_incidents_commands_consumed_total',
  receipts: 'pitwall_incidents_receipts_consumed_total',
  /** Inputs that changed nothing, with reason label (see IgnoredReason in incident-state.ts). */
  ignored: 'pitwall_incidents_inputs_ignored_total',
  opened: 'pitwall_incidents_opened_total',
  escalated: 'pitwall_incidents_escalated_total',
  cleared: 'pitwall_incidents_cleared_total',
  resolved: 'pitwall_incidents_resolved_total',
  acknowledged: 'pitwall_incidents_acknowledged_total',
  delivered: 'pitwall_incidents_delivered_total',
  written: 'pitwall_incidents_records_written_total',
  deadLettered: 'pitwall_incidents_dead_lettered_total',
  transactionsAborted: 'pitwall_incidents_transactions_aborted_total',
  rebuilds: 'pitwall_incidents_state_rebuilds_total',
  rebuildRecords: 'pitwall_incidents_state_rebuild_records_total',
});

/** HELP texts and labels of the counters (counted when processed; a batch whose transaction aborts is processed again). */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.scores]: { help: 'Score records applied.' },
  [METRICS.commands]: { help: "Operators' commands applied." },
  [METRICS.receipts]: { help: "Cars' receipts applied." },
  [METRICS.ignored]: { help: 'Inputs that changed nothing, by reason (e.g. a re-scored window, a repeated command).', labels: ['reason'] },
  [METRICS.opened]: { help: 'Incidents opened.' },
  [METRICS.escalated]: { help: 'Incidents whose severity rose.' },
  [METRICS.cleared]: { help: 'Incidents cleared after INCIDENTS_CLEAR_AFTER_WINDOWS normal windows.' },
  [METRICS.resolved]: { help: 'Incidents resolved by an operator.' },
  [METRICS.acknowledged]: { help: 'Incidents acknowledged by an operator.' },
  [METRICS.delivered]: { help: "Incidents marked delivered by the car's receipt." },
  [METRICS.written]: { help: 'Incident records committed to the incidents topic.' },
  [METRICS.deadLettered]: { help: 'Undecodable input records sent to the dead-letter topic.' },
  [METRICS.transactionsAborted]: { help: 'Batch transactions aborted; the partition resumes from its last commit.' },
  [METRICS.rebuilds]: { help: 'State rebuilds from the incidents topic (after joining the group or an abort).' },
  [METRICS.rebuildRecords]: { help: 'Incident records read by state rebuilds.' },
});

export const HISTOGRAMS = Object.freeze({
  windowEndToCommit: 'pitwall_incidents_window_end_to_commit_seconds',
});

/** The incidents service's metrics in `registry`. */
export function createIncidentsMetrics(registry: Registry) {
  return {
    registry,
    counters: createCounters(COUNTERS, registry),
    windowEndToCommit: histogram(registry, {
      name: HISTOGRAMS.windowEndToCommit,
      help: 'Seconds from the end of the anomalous window that opened or escalated an incident to the commit of that incident record (wall clock minus last_anomalous_window_end), by change.',
      buckets: LATENCY_BUCKETS,
      labelNames: ['change'],
    }),
  };
}

export { createCounters } from '@pitwall/common';
