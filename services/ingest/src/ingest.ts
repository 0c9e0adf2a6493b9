/**
 * Ingest: MQTT (shared subscription, QoS 1, persistent session) -> Kafka.
 *
 * Guarantee: at-least-once from the car's broker session to Kafka. A message's PUBACK is sent only
 * after Kafka acknowledged its record (acks=all, idempotent producer), so an ingest killed at any
 * point leaves its unacknowledged messages in the broker session, which redelivers them on
 * reconnect. Redelivery can duplicate a record in Kafka; downstream deduplicates on (vehicle, ts).
 */
import type { Kafka, Producer } from 'kafkajs';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectWithHeldAcks, provisionTopics, type AvroCodec, type HeldMessage, type Logger, type ReceiptRecord, type Service, type TelemetryRecord } from '@pitwall/common';
import { createBatcher } from './batcher.js';
import { handleReceipt, isReceiptTopic } from './handlers/receipt.js';
import { handleTelemetry, type OutgoingRecord } from './handlers/telemetry.js';
import { createCounters, METRICS } from './metrics.js';
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
  maxBatch: number;
  lingerMs: number;
}

export interface IngestDeps {
  kafka: Kafka;
  codec: AvroCodec<TelemetryRecord>;
  receiptCodec: AvroCodec<ReceiptRecord>;
  log: Logger;
  config: IngestConfig;
  now?: () => number;
}

export type Ingest = Service;

interface Pending {
  record: OutgoingRecord;
  message: HeldMessage;
}

export function createIngest(deps: IngestDeps): Ingest {
  const { config, log } = deps;
  const now = deps.now ?? Date.now;
  const counters = createCounters();
  let producer: Producer | undefined;
  let client: MqttClient | undefined;
  let closing = false;

  const batcher = createBatcher<Pending>({
    maxBatch: config.maxBatch,
    lingerMs: config.lingerMs,
    async send(items) {
      const byTopic = new Map<string, OutgoingRecord[]>();
      for (const { record } of items) {
        const list = byTopic.get(record.topic) ?? [];
        list.push(record);
        byTopic.set(record.topic, list);
      }
      await producer!.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, records]) => ({
          topic,
          messages: records.map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })),
        })),
      });
    },
    onSent(items) {
      for (const item of items) item.message.ack();
      counters.inc(METRICS.produced, items.length);
    },
    onError(err, attempt) {
      counters.inc(METRICS.sendFailures);
      log.warn('kafka send failed; retrying, MQTT acks held back', { attempt, err });
    },
  });

  const onMessage = (message: HeldMessage): void => {
    // During shutdown new messages are neither forwarded nor acknowledged: the broker keeps them.
    if (closing) return;
    if (isReceiptTopic(message.topic)) {
      onReceipt(message);
      return;
    }
    counters.inc(METRICS.received);
    const outcome = handleTelemetry(
      { service: config.service, codec: deps.codec, topics: config.topics, limits: config.limits },
      message.topic,
      message.payload,
      now(),
    );
    if (outcome.kind === 'dead-letter') {
      counters.inc(METRICS.deadLettered, 1, outcome.reason);
      log.debug('dead-lettered telemetry', { reason: outcome.reason, topic: message.topic });
    } else if (outcome.outOfRange > 0) counters.inc(METRICS.outOfRange);
    batcher.add({ record: outcome.record, message });
  };

  const onReceipt = (message: HeldMessage): void => {
    counters.inc(METRICS.receiptsReceived);
    const outcome = handleReceipt(
      { service: config.service, codec: deps.receiptCodec, topics: config.topics, limits: config.limits },
      message.topic,
      message.payload,
      now(),
    );
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
      producer = deps.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      client = await connectWithHeldAcks(config.mqttUrl, config.mqttOptions, log, onMessage);
      const subscriptions = [config.subscription, config.receiptSubscription];
      const granted = await client.subscribeAsync(subscriptions, { qos: 1 });
      if (granted.some((g) => g.qos > 2)) throw new Error(`subscription to ${subscriptions.join(', ')} refused: ${JSON.stringify(granted)}`);
      log.info('ingest started', { subscriptions, topics: config.topics });
    },
    async close() {
      closing = true;
      await batcher.flush();
      await client?.endAsync(false);
      await producer?.disconnect();
    },
    ready: () => !closing && Boolean(client?.connected) && producer !== undefined,
    stats: () => ({ ...counters.snapshot(), pending: batcher.pending() }),
  };
}
