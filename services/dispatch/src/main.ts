import { createKafka, createLogger, createSchemaStore, createTopicCodec, mqttOptions, onShutdown, runMain, startHealthServer, type IncidentRecord } from '@pitwall/common';
import { readDispatchConfig } from './config.js';
import { createDispatch } from './dispatch.js';

runMain('dispatch', async () => {
  const config = readDispatchConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const dispatch = createDispatch({
    kafka: createKafka(config, log),
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
    },
  });
  await dispatch.start();
  const health = await startHealthServer(config.healthPort, { dispatch: dispatch.ready });
  onShutdown(log, async () => {
    await dispatch.close();
    await health.close();
  });
});
