import { createCounters, gauge, histogram, LATENCY_BUCKETS, type CounterSpecs, type Registry } from '@pitwall/common';

/** Counter names of the ingest service (exported on /metrics of the health port). */
export const METRICS = Object.freeze({
  received: 'pitwall_ingest_messages_received_total',
  receiptsReceived: 'pitwall_ingest_receipts_received_total',
  /** Telemetry, receipts and dead letters. */
  produced: 'pitwall_ingest_records_produced_total',
  deadLettered: 'pitwall_ingest_dead_lettered_total',
  outOfRange: 'pitwall_ingest_out_of_range_readings_total',
  sendFailures: 'pitwall_ingest_kafka_send_failures_total',
});

/** HELP texts and labels of the counters. */
export const COUNTERS: CounterSpecs = Object.freeze({
  [METRICS.received]: { help: 'Telemetry messages received over MQTT, valid or not.' },
  [METRICS.receiptsReceived]: { help: "Cars' alert receipts received over MQTT, valid or not." },
  [METRICS.produced]: { help: 'Records acknowledged by Kafka (telemetry, receipts and dead letters); their MQTT messages are acknowledged then.' },
  [METRICS.deadLettered]: { help: 'Messages sent to the dead-letter topic, by reason (pitwall.dlq.reason).', labels: ['reason'] },
  [METRICS.outOfRange]: { help: 'Readings forwarded with at least one sensor outside its plausible range.' },
  [METRICS.sendFailures]: { help: 'Failed Kafka sends (each is retried; MQTT acknowledgements wait).' },
});

export const HISTOGRAMS = Object.freeze({
  eventToAck: 'pitwall_ingest_event_to_ack_seconds',
  batchSeconds: 'pitwall_ingest_kafka_batch_seconds',
  batchRecords: 'pitwall_ingest_kafka_batch_records',
});

/** Records per Kafka batch: ingest's default INGEST_BATCH_MAX is 2,000. */
const BATCH_RECORD_BUCKETS = [1, 10, 100, 500, 1000, 2000, 5000, 10_000, 50_000] as const;
/** Seconds per Kafka batch: 1 ms to 30 s (a send that waits on a broker outage retries up to then). */
const BATCH_SECOND_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export const GAUGES = Object.freeze({
  unacked: 'pitwall_ingest_mqtt_unacked_messages',
  brokerDropped: 'pitwall_mqtt_broker_dropped_messages',
});

/** The ingest's metrics in `registry`. */
export function createIngestMetrics(registry: Registry) {
  // Kept by the MQTT client (connectWithHeldAcks), read at each scrape.
  const unacked = { value: 0 };
  gauge(registry, {
    name: GAUGES.unacked,
    help: 'MQTT messages delivered to this ingest and not yet acknowledged (waiting for Kafka); at most INGEST_RECEIVE_MAXIMUM.',
    collect() {
      this.set(unacked.value);
    },
  });
  return {
    registry,
    /** Registered at the broker's first report: absent while the broker has not told (or cannot). */
    brokerDropped: () =>
      gauge(registry, {
        name: GAUGES.brokerDropped,
        help: "Messages the MQTT broker dropped on its queue or in-flight limits since it started, as it last reported ($SYS/broker/publish/messages/dropped, sent when it changes; 0 while none was reported since ingest saw the broker's $SYS): acknowledged readings lost before ingest; should stay 0.",
      }),
    counters: createCounters(COUNTERS, registry),
    eventToAck: histogram(registry, {
      name: HISTOGRAMS.eventToAck,
      help: "Seconds from a reading's event time (ts) to Kafka's acknowledgement of its telemetry record (0 for a car clock ahead of ingest's).",
      buckets: LATENCY_BUCKETS,
    }),
    // Throughput while a backlog waits is records per batch / seconds per batch: one batch is sent at a time.
    batchSeconds: histogram(registry, {
      name: HISTOGRAMS.batchSeconds,
      help: 'Seconds from the start of a Kafka send of a batch of records to its acknowledgement (successful attempts; the failed ones count in pitwall_ingest_kafka_send_failures_total).',
      buckets: BATCH_SECOND_BUCKETS,
    }),
    batchRecords: histogram(registry, {
      name: HISTOGRAMS.batchRecords,
      help: 'Records per Kafka batch acknowledged (at most INGEST_BATCH_MAX, and bounded by bytes).',
      buckets: BATCH_RECORD_BUCKETS,
    }),
    unacked,
  };
}

export { createCounters } from '@pitwall/common';
