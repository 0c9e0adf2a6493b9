/** Counter names of the incidents service (exported on /metrics once Prometheus support lands). */
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

export { createCounters } from '@pitwall/common';
