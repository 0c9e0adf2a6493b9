import {
  createCounters,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaStore,
  createTopicCodec,
  exportReadiness,
  mqttOptions,
  onShutdown,
  probeKafka,
  READINESS_COUNTERS,
  runMain,
  serviceReadiness,
  startConsumerLagPoller,
  startHealthServer,
  type IncidentRecord,
} from '@pitwall/common';
import { readDispatchConfig } from './config.js';
import { createDispatch } from './dispatch.js';

runMain('dispatch', async () => {
  const config = readDispatchConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const readiness = serviceReadiness(config, log, createCounters(READINESS_COUNTERS, metrics));
  exportReadiness(metrics, readiness.checks);
  const kafka = createKafka(config, log);
  const dispatch = createDispatch({
    kafka,
    readiness,
    metrics,
    incidentsCodec: await createTopicCodec<IncidentRecord>(createSchemaStore(config.registryUrl, config.registryCredentials), config.topics.incidents, 'incident', 1),
    log,
    config: {
      service: config.service,
      groupId: config.groupId,
      mqttUrl: config.mqtt.url,
      // MQTT 5 for message properties (expiry, correlation data, user properties).
      mqttOptions: mqttOptions(config, { clientId: config.mqttClientId, clean: true, protocolVersion: 5 }),
      fleetTopic: config.fleetTopic,
      alertExpirySeconds: config.alertExpirySeconds,
      partitions: config.partitions,
      topics: { incidents: config.topics.incidents, dlq: config.dlqTopic },
      maxBatchBytes: config.kafka.maxBatchBytes,
    },
  });
  const health = await startHealthServer(config.healthPort, readiness.failing, { metrics });
  const probe = probeKafka(kafka, readiness);
  await dispatch.start();
  // After start: the topics exist.
  const lag = startConsumerLagPoller({ kafka, registry: metrics, groups: [{ groupId: config.groupId, topics: [config.topics.incidents] }], log });
  onShutdown(log, async () => {
    readiness.stop();
    await dispatch.close();
    await lag.stop();
    await probe.stop();
    await health.close();
  });
});
