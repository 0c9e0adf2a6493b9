import { createAvroCodec, createKafka, createLogger, createSchemaStore, defaultSchemasDir, loadSchemaFile, mqttOptions, onShutdown, runMain, startHealthServer } from '@pitwall/common';
import { readDispatchConfig } from './config.js';
import { createDispatch } from './dispatch.js';
import type { AlertRecord } from './handlers/alert.js';

runMain('dispatch', async () => {
  const config = readDispatchConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const dispatch = createDispatch({
    kafka: createKafka(config, log),
    alertsCodec: await createAvroCodec<AlertRecord>(
      createSchemaStore(config.registryUrl),
      `${config.topics.alerts}-value`,
      await loadSchemaFile(defaultSchemasDir(), 'alert', 1),
    ),
    log,
    config: {
      service: config.service,
      groupId: config.groupId,
      mqttUrl: config.mqtt.url,
      mqttOptions: mqttOptions(config, { clientId: config.mqttClientId, clean: true }),
      fleetTopic: config.fleetTopic,
      partitions: config.partitions,
      topics: { alerts: config.topics.alerts, dlq: config.dlqTopic },
    },
  });
  await dispatch.start();
  const health = await startHealthServer(config.healthPort, { dispatch: dispatch.ready });
  onShutdown(log, async () => {
    await dispatch.close();
    await health.close();
  });
});
