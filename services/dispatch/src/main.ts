import {
  createKafka,
  createLogger,
  createSchemaStore,
  createTopicCodec,
  mqttOptions,
  onShutdown,
  probeKafka,
  runMain,
  serviceReadiness,
  startHealthServer,
  type IncidentRecord,
} from '@pitwall/common';
import { readDispatchConfig } from './config.js';
import { createDispatch } from './dispatch.js';

runMain('dispatch', async () => {
  const config = readDispatchConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const readiness = serviceReadiness(config, log);
  const kafka = createKafka(config, log);
  const dispatch = createDispatch({
    kafka,
    readiness,
    incidentsCodec: await createTopicCodec<IncidentRecord>(createSchemaStore(config.registryUrl), config.topics.incidents, 'incident', 1),
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
  const health = await startHealthServer(config.healthPort, readiness.failing);
  const probe = probeKafka(kafka, readiness);
  await dispatch.start();
  onShutdown(log, async () => {
    readiness.stop();
    await dispatch.close();
    await probe.stop();
    await health.close();
  });
});
