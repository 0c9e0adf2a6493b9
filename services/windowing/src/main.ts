import {
  createAvroCodec,
  createKafka,
  createLogger,
  createSchemaStore,
  defaultSchemasDir,
  loadSchemaFile,
  onShutdown,
  runMain,
  startHealthServer,
  type TelemetryRecord,
} from '@pitwall/common';
import { readWindowingConfig } from './config.js';
import { createWindowing, type FeatureRecord } from './windowing.js';

runMain('windowing', async () => {
  const config = readWindowingConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const store = createSchemaStore(config.registryUrl);
  const schemas = defaultSchemasDir();
  const windowing = createWindowing({
    kafka: createKafka(config, log),
    telemetryCodec: await createAvroCodec<TelemetryRecord>(store, `${config.topics.telemetry}-value`, await loadSchemaFile(schemas, 'telemetry', 2)),
    featuresCodec: await createAvroCodec<FeatureRecord>(store, `${config.topics.features}-value`, await loadSchemaFile(schemas, 'features', 1)),
    log,
    config: {
      service: config.service,
      groupId: config.groupId,
      window: config.window,
      partitions: config.partitions,
      maxBytesPerPartition: config.maxBytesPerPartition,
      transactionalIdPrefix: config.transactionalIdPrefix,
      idleMs: config.idleMs,
      topics: { telemetry: config.topics.telemetry, features: config.topics.features, dlq: config.topics.telemetryDlq, late: config.lateTopic },
    },
  });
  await windowing.start();
  const health = await startHealthServer(config.healthPort, { windowing: windowing.ready });
  onShutdown(log, async () => {
    await windowing.close();
    await health.close();
  });
});
