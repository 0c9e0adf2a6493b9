import { createAvroCodec, createKafka, createLogger, createSchemaStore, defaultSchemasDir, loadSchemaFile, mqttOptions, onShutdown, runMain, startHealthServer, type TelemetryRecord } from '@pitwall/common';
import { readIngestConfig } from './config.js';
import { createIngest } from './ingest.js';

runMain('ingest', async () => {
  const config = readIngestConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const codec = await createAvroCodec<TelemetryRecord>(
    createSchemaStore(config.registryUrl),
    `${config.topics.telemetry}-value`,
    await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2),
    // v2 must stay readable by v1 readers' successors: every new version is checked by the registry.
    { compatibility: 'BACKWARD' },
  );
  const ingest = createIngest({
    kafka: createKafka(config, log),
    codec,
    log,
    config: {
      service: config.service,
      mqttUrl: config.mqtt.url,
      mqttOptions: mqttOptions(config, { clientId: config.mqttClientId, clean: false, properties: { sessionExpiryInterval: config.sessionExpirySeconds } }),
      subscription: config.subscription,
      topics: { telemetry: config.topics.telemetry, dlq: config.topics.telemetryDlq },
      partitions: config.partitions,
      limits: { maxPayloadBytes: config.maxPayloadBytes, maxFutureSkewMs: config.maxFutureSkewMs },
      maxBatch: config.maxBatch,
      lingerMs: config.lingerMs,
    },
  });
  await ingest.start();
  const health = await startHealthServer(config.healthPort, { ingest: ingest.ready });
  onShutdown(log, async () => {
    await ingest.close();
    await health.close();
  });
});
