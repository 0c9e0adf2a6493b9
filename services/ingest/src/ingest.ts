/**
 * Ingest: MQTT (shared subscription, QoS 1, persistent session) -> Kafka.
 *
 * Guarantee: at-least-once from the car's broker session to Kafka. A message's PUBACK is sent only
 * after Kafka acknowledged its record (acks=all, idempotent producer), so an ingest killed at any
 * point leaves its unacknowledged messages in the broker session, which redelivers them on
 * reconnect. Redelivery can duplicate a record in Kafka; downstream deduplicates on (vehicle, ts).
 */
import type { Kafka } from 'kafkajs';
import type { IClientOptions, MqttClient } from 'mqtt';
import {
  ConfigError,
  connectWithHeldAcks,
  createBoundedSender,
  createProducerSession,
  type ProducerSession,
  createMetricsRegistry,
  createReadiness,
  DEFAULT_MAX_BATCH_BYTES,
  keepSubscribed,
  provisionTopics,
  readSendBudget,
  RECORD_BATCH_OVERHEAD,
  recordSize,
  secondsSince,
  serverMaximumPacketSize,
  watchMqtt,
  type AvroCodec,
  type HeldMessage,
  type KeptSubscription,
  type FleetProfile,
  type Logger,
  type Readiness,
  type ReceiptRecord,
  type Registry,
  type Service,
  type TelemetryRecord,
} from '@pitwall/common';
import { createBatcher } from './batcher.js';
import { handleReceipt, isReceiptTopic } from './handlers/receipt.js';
import { handleTelemetry, type OutgoingRecord } from './handlers/telemetry.js';
import { createIngestMetrics, METRICS } from './metrics.js';
import { BROKER_DROPS_TOPIC, BROKER_UPTIME_TOPIC, createBrokerDropsHandler } from './handlers/broker-drops.js';
import type { ValidationLimits } from './validate.js';

export interface IngestConfig {
  service: string;
  mqttUrl: string;
  mqttOptions: IClientOptions;
  subscription: string;
  /** Shared subscription for the cars' alert receipts. */
  receiptSubscription: string;
  topics: { telemetry: string; receipts: string; dlq: string };
  partitions: number;
  limits: ValidationLimits;
  /** What the fleet sends: fields, units, ranges (INGEST_FLEET_PROFILE); default Pitwall's own. */
  profile?: FleetProfile;
  maxBatch: number;
  lingerMs: number;
  /** Most bytes per Kafka send (KAFKA_MAX_BATCH_BYTES; lowered to the topics' max.message.bytes at start). */
  maxBatchBytes?: number;
  /** How long close() keeps trying to send what it holds (default 5 s); the rest stays unacknowledged in the MQTT session. */
  flushTimeoutMs?: number;
}

export interface IngestDeps {
  kafka: Kafka;
  codec: AvroCodec<TelemetryRecord>;
  receiptCodec: AvroCodec<ReceiptRecord>;
  log: Logger;
  config: IngestConfig;
  now?: () => number;
  /** Readiness checks (main.ts shares it with /readyz and the Kafka probe); one of its own when absent. */
  readiness?: Readiness;
  /** Where counters and histograms are registered (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export type Ingest = Service;

interface Pending {
  record: OutgoingRecord;
  message: HeldMessage;
  /** A reading's event time. */
  ts?: number;
}

export function createIngest(deps: IngestDeps): Ingest {
  const { config, log } = deps;
  const now = deps.now ?? Date.now;
  const metrics = createIngestMetrics(deps.metrics ?? createMetricsRegistry({ processMetrics: false }));
  const { counters } = metrics;
  let producer: ProducerSession | undefined;
  let client: MqttClient | undefined;
  let subscription: KeptSubscription | undefined;
  let closing = false;
  let failedBatches = 0;
  const readiness = deps.readiness ?? createReadiness({ log });
  readiness.set('ingest', false, 'starting');

  // Batches are bounded by bytes, so one is one send; a payload too large even for the DLQ is cut to fit.
  const sender = createBoundedSender({ maxBytes: config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, service: config.service, dlqTopic: config.topics.dlq, log });
  // After a refused multi-record send the producer's sequence numbers are out of step: a new session.
  const resetProducer = (): Promise<void> => producer!.reset();

  const batcher = createBatcher<Pending>({
    maxBatch: config.maxBatch,
    maxBytes: () => sender.budget() - RECORD_BATCH_OVERHEAD,
    sizeOf: ({ record }) => recordSize(record),
    lingerMs: config.lingerMs,
    async send(items) {
      const started = performance.now();
      const byTopic = new Map<string, OutgoingRecord[]>();
      for (const { record } of items) {
        const list = byTopic.get(record.topic) ?? [];
        list.push(record);
        byTopic.set(record.topic, list);
      }
      await sender.send(
        (topicMessages) => producer!.sendBatch({ acks: -1, topicMessages }),
        [...byTopic].map(([topic, records]) => ({
          topic,
          messages: records.map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })),
        })),
        { reset: resetProducer },
      );
      metrics.batchSeconds.observe((performance.now() - started) / 1000);
      metrics.batchRecords.observe(items.length);
    },
    onSent(items) {
      const at = now();
      for (const item of items) {
        item.message.ack();
        if (item.ts !== undefined) metrics.eventToAck.observe(secondsSince(item.ts, at));
      }
      counters.inc(METRICS.produced, items.length);
      readiness.batchDone({ topic: 'kafka send' });
    },
    onError(err, attempt) {
      counters.inc(METRICS.sendFailures);
      log.warn('kafka send failed; retrying, MQTT acks held back', { attempt, err });
      // The batcher retries the same batch: attempt 0 starts a new one.
      if (attempt === 0) failedBatches += 1;
      readiness.batchFailed({ topic: 'kafka send', firstOffset: `batch ${failedBatches}`, lastOffset: `attempt ${attempt + 1}` }, err);
    },
  });
  readiness.pending('kafka sends', () => batcher.pending());

  const onBrokerSys = createBrokerDropsHandler({ gauge: metrics.brokerDropped, log });
  const onMessage = (message: HeldMessage): void => {
    if (onBrokerSys(message.topic, message.payload)) return;
    // During shutdown new messages are neither forwarded nor acknowledged: the broker keeps them.
    if (closing) return;
    if (isReceiptTopic(message.topic)) {
      onReceipt(message);
      return;
    }
    counters.inc(METRICS.received);
    const outcome = handleTelemetry(
      { service: config.service, codec: deps.codec, topics: config.topics, limits: config.limits, ...(config.profile ? { profile: config.profile } : {}) },
      message.topic,
      message.payload,
      now(),
    );
    if (outcome.kind === 'dead-letter') {
      counters.inc(METRICS.deadLettered, 1, outcome.reason);
      log.debug('dead-lettered telemetry', { reason: outcome.reason, topic: message.topic });
    } else if (outcome.outOfRange > 0) counters.inc(METRICS.outOfRange);
    batcher.add({ record: outcome.record, message, ...(outcome.kind === 'record' ? { ts: outcome.ts } : {}) });
  };

  const onReceipt = (message: HeldMessage): void => {
    counters.inc(METRICS.receiptsReceived);
    const outcome = handleReceipt({ service: config.service, codec: deps.receiptCodec, topics: config.topics, limits: config.limits }, message.topic, message.payload, now());
    if (outcome.kind === 'dead-letter') {
      counters.inc(METRICS.deadLettered, 1, outcome.reason);
      log.info('dead-lettered receipt', { reason: outcome.reason, topic: message.topic });
    } else {
      log.debug('receipt', { vehicleId: outcome.receipt.vehicle_id, incidentId: outcome.receipt.incident_id, revision: outcome.receipt.revision });
    }
    batcher.add({ record: outcome.record, message });
  };

  return {
    async start() {
      await provisionTopics(deps.kafka, [{ topic: config.topics.telemetry }, { topic: config.topics.receipts }, { topic: config.topics.dlq }], {
        partitions: config.partitions,
      });
      const { telemetry, receipts, dlq } = config.topics;
      sender.setBudget(await readSendBudget(deps.kafka, [telemetry, receipts, dlq], config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, log));
      producer = createProducerSession(() => deps.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false }));
      await producer.connect();
      client = await connectWithHeldAcks(config.mqttUrl, config.mqttOptions, log, onMessage, metrics.unacked);
      watchMqtt(readiness, client);
      // A payload over ingest's limit must still reach ingest to be dead-lettered, not be dropped by the broker.
      const brokerMax = serverMaximumPacketSize(client);
      const needed = config.limits.maxPayloadBytes + 1024;
      if (brokerMax !== undefined && brokerMax < needed) {
        throw new ConfigError(
          'INGEST_MAX_PAYLOAD_BYTES',
          `${config.limits.maxPayloadBytes} needs an MQTT broker that accepts packets of at least ${needed} bytes (so larger payloads reach ingest and are dead-lettered); the broker's maximum packet size is ${brokerMax}`,
        );
      }
      // On every connection, not only the first: see keepSubscribed.
      const subscriptions = [config.subscription, config.receiptSubscription];
      subscription = keepSubscribed(client, subscriptions, { qos: 1, log, onChange: (ok, why) => readiness.set('mqtt.subscription', ok, why) });
      await subscription.first;
      // The broker's drop counter (Mosquitto): optional, another broker may not have it.
      client.subscribeAsync({ [BROKER_DROPS_TOPIC]: { qos: 0 }, [BROKER_UPTIME_TOPIC]: { qos: 0 } }).then(
        (grants) => {
          if (grants.some((g) => g.qos > 2))
            log.warn('the broker refused ingest its drop counter: broker-side loss will not show in pitwall_mqtt_broker_dropped_messages', { topic: BROKER_DROPS_TOPIC });
        },
        () => undefined,
      );
      readiness.set('ingest', true);
      log.info('ingest started', { subscriptions, topics: config.topics, brokerMaxPacketSize: brokerMax ?? null });
    },
    async close() {
      closing = true;
      readiness.set('ingest', false, 'closing');
      subscription?.stop();
      // Bounded: a broker that refuses or never answers must not hold up shutdown. Messages not
      // sent were never acknowledged over MQTT; the persistent session redelivers them.
      const pending = batcher.pending();
      if (!(await batcher.close(config.flushTimeoutMs ?? 5_000))) {
        log.warn('kafka sends unfinished at shutdown; their MQTT messages stay unacknowledged and are redelivered', { pending: batcher.pending(), pendingAtClose: pending });
      }
      await client?.endAsync(false);
      await producer?.disconnect();
    },
    ready: () => readiness.ready(),
    stats: () => ({ ...counters.snapshot(), pending: batcher.pending() }),
  };
}
