/**
 * Dispatch: maintenance.alerts -> MQTT `vehicles/{vehicleId}/alerts` and the operators' topic.
 *
 * Guarantee: at-least-once. A batch's offsets are committed only after the broker acknowledged
 * (PUBACK) every QoS 1 publication of it. A crash in between republishes those alerts; receivers
 * deduplicate on `alertId` (ids are deterministic), and this process skips ids it already sent.
 */
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectMqtt, undecodableRecord, provisionTopics, type AvroCodec, type Logger, type Service } from '@pitwall/common';
import { alertPublications, type AlertRecord } from './handlers/alert.js';
import { createCounters, METRICS } from './metrics.js';
import { createRecentSet } from './recent.js';

export interface DispatchConfig {
  service: string;
  groupId: string;
  mqttUrl: string;
  mqttOptions: IClientOptions;
  fleetTopic: string;
  partitions: number;
  topics: { alerts: string; dlq: string };
}

export interface DispatchDeps {
  kafka: Kafka;
  alertsCodec: AvroCodec<AlertRecord>;
  log: Logger;
  config: DispatchConfig;
}

export type Dispatch = Service;

export function createDispatch(deps: DispatchDeps): Dispatch {
  const { config, log } = deps;
  const counters = createCounters();
  const recent = createRecentSet(50_000);
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let client: MqttClient | undefined;
  let running = false;

  const eachBatch = async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const publishes: Promise<unknown>[] = [];
    const deadLetters: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    let last: string | undefined;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      last = message.offset;
      let alert: AlertRecord;
      try {
        if (!message.value) throw new Error('empty message value');
        alert = await deps.alertsCodec.decode(message.value);
      } catch (err) {
        counters.inc(METRICS.deadLettered);
        deadLetters.push(undecodableRecord(config.service, err, message, { topic: batch.topic, partition: batch.partition }));
        continue;
      }
      counters.inc(METRICS.consumed);
      if (recent.has(alert.alert_id)) {
        counters.inc(METRICS.skippedDuplicates);
        continue;
      }
      for (const p of alertPublications(alert, config.fleetTopic)) {
        publishes.push(client!.publishAsync(p.topic, p.payload, { qos: 1, properties: { contentType: 'application/json' } }));
      }
      recent.add(alert.alert_id);
      log.info('alert dispatched', { alertId: alert.alert_id, vehicleId: alert.vehicle_id, score: alert.score, top: alert.contributors[0]?.sensor });
    }
    if (last === undefined) return;
    await Promise.all(publishes);
    counters.inc(METRICS.published, publishes.length);
    if (deadLetters.length > 0) await producer!.send({ topic: config.topics.dlq, acks: -1, messages: deadLetters });
    resolveOffset(last);
    await commitOffsetsIfNecessary();
    await heartbeat();
  };

  return {
    async start() {
      await provisionTopics(deps.kafka, [{ topic: config.topics.alerts }, { topic: config.topics.dlq }], { partitions: config.partitions });
      client = await connectMqtt(config.mqttUrl, config.mqttOptions, log);
      producer = deps.kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
      await producer.connect();
      consumer = deps.kafka.consumer({ groupId: config.groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      await consumer.connect();
      await consumer.subscribe({ topic: config.topics.alerts, fromBeginning: true });
      // Offsets are committed by us after each batch (commitOffsetsIfNecessary with autoCommitThreshold 1).
      await consumer.run({ eachBatchAutoResolve: false, autoCommitThreshold: 1, eachBatch });
      running = true;
      log.info('dispatch started', { alerts: config.topics.alerts, fleetTopic: config.fleetTopic });
    },
    async close() {
      running = false;
      await consumer?.disconnect();
      await producer?.disconnect();
      await client?.endAsync(false);
    },
    ready: () => running && Boolean(client?.connected),
    stats: () => counters.snapshot(),
  };
}
