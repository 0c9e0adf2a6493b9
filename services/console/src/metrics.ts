/** Counter names of the console (exported on /metrics once Prometheus support lands). */
export const METRICS = Object.freeze({
  incidentsRead: 'pitwall_console_incident_records_read_total',
  scoresRead: 'pitwall_console_score_records_read_total',
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
