/** Counter names of the ingest service (exported on /metrics once Prometheus support lands). */
export const METRICS = Object.freeze({
  received: 'pitwall_ingest_messages_received_total',
  receiptsReceived: 'pitwall_ingest_receipts_received_total',
  /** Telemetry, receipts and dead letters. */
  produced: 'pitwall_ingest_records_produced_total',
  deadLettered: 'pitwall_ingest_dead_lettered_total',
  outOfRange: 'pitwall_ingest_out_of_range_readings_total',
  sendFailures: 'pitwall_ingest_kafka_send_failures_total',
});

export { createCounters } from '@pitwall/common';
