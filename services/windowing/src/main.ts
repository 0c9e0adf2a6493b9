import {
  createKafka,
  createLogger,
  createSchemaStore,
  createTopicCodec,
  onShutdown,
  probeKafka,
  runMain,
  serviceReadiness,
  startHealthServer,
  type TelemetryRecord,
} from '@pitwall/common';
import { readWindowingConfig } from './config.js';
import { createWindowing, type FeatureRecord } from './windowing.js';

runMain('windowing', async () => {
  const config = readWindowingConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const store = createSchemaStore(config.registryUrl);
  const readiness = serviceReadiness(config, log);
  const kafka = createKafka(config, log);
  const windowing = createWindowing({
    kafka,
    readiness,
    telemetryCodec: await createTopicCodec<TelemetryRecord>(store, config.topics.telemetry, 'telemetry', 2),
    featuresCodec: await createTopicCodec<FeatureRecord>(store, config.topics.features, 'features', 1),
    log,
    config: {
      service: config.service,
      groupId: config.groupId,
      window: config.window,
      partitions: config.partitions,
      maxBytesPerPartition: config.maxBytesPerPartition,
      transactionalIdPrefix: config.transactionalIdPrefix,
      maxBatchBytes: config.kafka.maxBatchBytes,
      idleMs: config.idleMs,
      vehicleIdleMs: config.vehicleIdleMs,
      topics: {
        telemetry: config.topics.telemetry,
        features: config.topics.features,
        dlq: config.topics.telemetryDlq,
        late: config.lateTopic,
        floors: config.floorsTopic,
      },
    },
  });
  const health = await startHealthServer(config.healthPort, readiness.failing);
  const probe = probeKafka(kafka, readiness);
  await windowing.start();
  onShutdown(log, async () => {
    readiness.stop();
    await windowing.close();
    await probe.stop();
    await health.close();
  });
});
