/**
 * Dispatch: maintenance.incidents (compacted, read_committed) -> MQTT 5: alerts to the car, the
 * car's retained maintenance state, and every change to the operators' fleet topic. The messages
 * are described in handlers/incident.ts.
 *
 * Start-up: before consuming with its group, dispatch reads the whole compacted topic into an
 * in-memory view of every incident. The retained maintenance message lists ALL open incidents of a
 * vehicle, and a restarted dispatch that only knew the records after its committed offset would
 * publish an incomplete list.
 *
 * Guarantee: at-least-once. A batch's offsets are committed only after the broker acknowledged
 * (PUBACK) every QoS 1 publication made for it. A crash in between republishes them; cars
 * deduplicate alerts on incident_id + revision, and this process skips alert revisions it already
 * sent. Maintenance states are coalesced per batch (one publication per vehicle, after the batch's
 * alerts) and always carry the view's latest state, so a replay never rolls a car's state back.
 *
 * Assumes one dispatch instance (k8s replicas: 1): incidents are keyed by incident id, so one
 * vehicle's incidents live on several partitions; a second instance owning some of them would not
 * see the others' changes after start-up and could publish a stale maintenance state.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { IClientOptions, MqttClient } from 'mqtt';
import {
  connectMqtt,
  createBoundedSender,
  createProducerSession,
  runConsumer,
  type ProducerSession,
  createMetricsRegistry,
  createReadiness,
  secondsSince,
  watchConsumer,
  watchConsumerLag,
  watchMqtt,
  type Readiness,
  DEFAULT_MAX_BATCH_BYTES,
  provisionTopics,
  readSendBudget,
  startTopicReader,
  undecodableRecord,
  type AvroCodec,
  type TopicReader,
  type IncidentRecord,
  type Logger,
  type Registry,
  type Service,
} from '@pitwall/common';
import { handleIncident, handleTombstone, maintenancePublication, type Publication } from './handlers/incident.js';
import { createDispatchMetrics, METRICS } from './metrics.js';
import { createRecentSet } from './recent.js';
import { createIncidentView } from './view.js';

export interface DispatchConfig {
  service: string;
  groupId: string;
  mqttUrl: string;
  mqttOptions: IClientOptions;
  fleetTopic: string;
  alertExpirySeconds: number;
  partitions: number;
  topics: { incidents: string; dlq: string };
  /** Most bytes per send (KAFKA_MAX_BATCH_BYTES; lowered to the DLQ's max.message.bytes at start). */
  maxBatchBytes?: number;
}

export interface DispatchDeps {
  kafka: Kafka;
  incidentsCodec: AvroCodec<IncidentRecord>;
  log: Logger;
  config: DispatchConfig;
  /** Readiness checks (main.ts shares it with /readyz); one of its own when absent. */
  readiness?: Readiness;
  /** Where counters, histograms and lag gauges are registered (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export type Dispatch = Service;

export function createDispatch(deps: DispatchDeps): Dispatch {
  const { config, log } = deps;
  const metrics = createDispatchMetrics(deps.metrics ?? createMetricsRegistry({ processMetrics: false }));
  const { counters } = metrics;
  const view = createIncidentView();
  const sent = createRecentSet(100_000);
  let consumer: Consumer | undefined;
  let producer: ProducerSession | undefined;
  let client: MqttClient | undefined;
  let rebuild: TopicReader | undefined;
  let running = false;
  const readiness = deps.readiness ?? createReadiness({ log });
  readiness.set('dispatch', false, 'starting');
  // Dead letters carry whole incident records: sent in chunks, each cut to fit if needed.
  const sender = createBoundedSender({ maxBytes: config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, service: config.service, dlqTopic: config.topics.dlq, log });
  // A fresh producer session after a refused multi-record send (createProducerSession).
  const resetProducer = (): Promise<void> => producer!.reset();

  const publish = (p: Publication): Promise<unknown> => client!.publishAsync(p.topic, p.payload, p.options);

  // eslint-disable-next-line @typescript-eslint/unbound-method -- kafkajs passes closures, meant to be destructured
  const eachBatch = async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const publishes: Promise<unknown>[] = [];
    const deadLetters: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    const alertKeys = new Set<string>();
    /** Per alert acknowledged by the broker: its change, window end and PUBACK time (observed once the batch succeeded). */
    const acked: { change: string; windowEnd: number; at: number }[] = [];
    const vehicles = new Set<string>();
    const alreadySent = (key: string): boolean => sent.has(key) || alertKeys.has(key);
    let last: string | undefined;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      last = message.offset;
      if (message.value === null) {
        // A tombstone: the incident was deleted from the compacted topic.
        counters.inc(METRICS.tombstones);
        const { maintenanceFor } = handleTombstone(message.key?.toString() ?? '', view);
        if (maintenanceFor !== undefined) vehicles.add(maintenanceFor);
        continue;
      }
      let incident: IncidentRecord;
      try {
        incident = await deps.incidentsCodec.decode(message.value);
      } catch (err) {
        counters.inc(METRICS.deadLettered);
        deadLetters.push(undecodableRecord(config.service, err, message, { topic: batch.topic, partition: batch.partition }));
        continue;
      }
      counters.inc(METRICS.consumed);
      const outcome = handleIncident(incident, view, alreadySent, config);
      // The alert, when there is one, is the first publication: its PUBACK time is measured.
      const alertAcked = (): void => void acked.push({ change: incident.last_change, windowEnd: incident.last_anomalous_window_end, at: Date.now() });
      outcome.publications.forEach((p, i) => publishes.push(i === 0 && outcome.alertKey !== undefined ? publish(p).then(alertAcked) : publish(p)));
      counters.inc(METRICS.fleetPublished);
      vehicles.add(outcome.maintenanceFor);
      if (outcome.alertKey !== undefined) {
        alertKeys.add(outcome.alertKey);
        log.info('alert dispatched', {
          incidentId: incident.incident_id,
          revision: incident.revision,
          vehicleId: incident.vehicle_id,
          change: incident.last_change,
          severity: incident.severity,
          area: incident.area,
        });
      } else if (outcome.alert === 'already-sent' || outcome.alert === 'closed-since') {
        counters.inc(METRICS.alertsSkipped, 1, outcome.alert);
      }
    }
    if (last === undefined) return;
    for (const v of vehicles) publishes.push(publish(maintenancePublication(v, view)));
    await Promise.all(publishes);
    // Only now are the alerts known to be with the broker; a failed batch is retried and sends them again.
    for (const k of alertKeys) sent.add(k);
    for (const a of acked) metrics.windowEndToPuback.observe({ change: a.change }, secondsSince(a.windowEnd, a.at));
    counters.inc(METRICS.alertsPublished, alertKeys.size);
    counters.inc(METRICS.maintenancePublished, vehicles.size);
    if (deadLetters.length > 0) {
      await sender.send((chunk) => producer!.sendBatch({ acks: -1, topicMessages: chunk }), [{ topic: config.topics.dlq, messages: deadLetters }], { reset: resetProducer });
    }
    resolveOffset(last);
    await commitOffsetsIfNecessary();
    await heartbeat();
  };

  const rebuildView = async (): Promise<void> => {
    const startedAt = Date.now();
    let records = 0;
    rebuild = await startTopicReader(deps.kafka, {
      topic: config.topics.incidents,
      groupIdPrefix: `${config.groupId}.rebuild`,
      log,
      async onBatch(batch) {
        for (const m of batch.messages) {
          records++;
          if (m.value === null) {
            view.remove(m.key?.toString() ?? '');
            continue;
          }
          try {
            view.apply(await deps.incidentsCodec.decode(m.value));
          } catch {
            // Dead-lettered by the group consumer when it reaches this record; nothing to learn here.
          }
        }
      },
    });
    await rebuild.caughtUp;
    await rebuild.stop();
    rebuild = undefined;
    log.info('incident view rebuilt', { records, ...view.size(), ms: Date.now() - startedAt });
  };

  return {
    async start() {
      await provisionTopics(deps.kafka, [{ topic: config.topics.incidents, configEntries: { 'cleanup.policy': 'compact' } }, { topic: config.topics.dlq }], { partitions: config.partitions });
      client = await connectMqtt(config.mqttUrl, config.mqttOptions, log);
      watchMqtt(readiness, client);
      sender.setBudget(await readSendBudget(deps.kafka, [config.topics.dlq], config.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, log));
      producer = createProducerSession(() => deps.kafka.producer({ idempotent: true, allowAutoTopicCreation: false }));
      await producer.connect();
      await rebuildView();
      consumer = deps.kafka.consumer({ groupId: config.groupId, readUncommitted: false, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      // Offsets are committed by us after each batch (commitOffsetsIfNecessary with autoCommitThreshold 1).
      const run = (): Promise<void> =>
        runConsumer(consumer!, { topic: config.topics.incidents, fromBeginning: true }, { eachBatchAutoResolve: false, autoCommitThreshold: 1, eachBatch: readiness.eachBatch(eachBatch) });
      watchConsumer(readiness, consumer, 'consumer', { restart: run, log });
      watchConsumerLag(metrics.registry, consumer, config.groupId);
      await run();
      running = true;
      readiness.set('dispatch', true);
      log.info('dispatch started', { incidents: config.topics.incidents, fleetTopic: config.fleetTopic, alertExpirySeconds: config.alertExpirySeconds });
    },
    async close() {
      running = false;
      readiness.set('dispatch', false, 'closing');
      await rebuild?.stop();
      await consumer?.disconnect();
      await producer?.disconnect();
      await client?.endAsync(false);
    },
    ready: () => running && readiness.ready(),
    stats: () => ({ ...counters.snapshot(), ...prefixed(view.size()) }),
  };
}

function prefixed(size: { incidents: number; open: number; vehicles: number }): Record<string, number> {
  return { view_incidents: size.incidents, view_open_incidents: size.open, view_vehicles: size.vehicles };
}
