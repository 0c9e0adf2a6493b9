import type { CounterSpecs } from '@pitwall/common';

/** Counter names of the console (exported on its port's /metrics). */
export const METRICS = Object.freeze({
  incidentsRead: 'pitwall_console_incident_records_read_total',
  scoresRead: 'pitwall_console_score_records_read_total',
  driftRead: 'pitwall_console_drift_records_read_total',
  undecodable: 'pitwall_console_undecodable_records_total',
  signIns: 'pitwall_console_sign_ins_total',
  /** Labelled with reason bad-credentials or rate-limited. */
  signInsRefused: 'pitwall_console_sign_ins_refused_total',
  /** Labelled with reason unauthenticated, bad-origin or forbidden (role). */
  requestsRefused: 'pitwall_console_requests_refused_total',
  /** Labelled with the action. */
  auditRecords: 'pitwall_console_audit_records_total',
  commandsWritten: 'pitwall_console_commands_written_total',
  telemetryReads: 'pitwall_console_telemetry_reads_total',
  sseConnections: 'pitwall_console_sse_connections_total',
});

/** HELP texts and labels of the counters (the label is `reason` throughout; for actions it names the action). */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.incidentsRead]: { help: 'Records read from the incidents topic.' },
  [METRICS.scoresRead]: { help: 'Records read from the scores topic.' },
  [METRICS.driftRead]: { help: 'Records read from the drift topic (model.drift).' },
  [METRICS.undecodable]: { help: 'Records skipped as undecodable, by reason: the record kind (incident, score, drift).', labels: ['reason'] },
  [METRICS.signIns]: { help: 'Successful sign-ins.' },
  [METRICS.signInsRefused]: { help: 'Refused sign-ins, by reason: bad-credentials or rate-limited.', labels: ['reason'] },
  [METRICS.requestsRefused]: { help: 'Refused requests, by reason: unauthenticated, bad-origin or forbidden (role).', labels: ['reason'] },
  [METRICS.auditRecords]: { help: 'Audit records written, by reason: the audited action.', labels: ['reason'] },
  [METRICS.commandsWritten]: { help: 'Incident commands written, by reason: the action (ACKNOWLEDGE, RESOLVE).', labels: ['reason'] },
  [METRICS.telemetryReads]: { help: 'Telemetry chart reads from Kafka.' },
  [METRICS.sseConnections]: { help: 'Live streams (SSE) opened.' },
});
