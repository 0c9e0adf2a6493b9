import {
  createCounters,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaStore,
  createTopicCodec,
  exportReadiness,
  onShutdown,
  probeKafka,
  READINESS_COUNTERS,
  runMain,
  serviceReadiness,
  startConsumerLagPoller,
  startHealthServer,
  type TelemetryRecord,
} from '@pitwall/common';
import { readWindowingConfig } from './config.js';
import { createWindowing, type FeatureRecord } from './windowing.js';

runMain('windowing', async () => {
  const config = readWindowingConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const readiness = serviceReadiness(config, log, createCounters(READINESS_COUNTERS, metrics));
  exportReadiness(metrics, readiness.checks);
  const kafka = createKafka(config, log);
  const windowing = createWindowing({
    kafka,
    readiness,
    metrics,
    telemetryCodec: await createTopicCodec<TelemetryRecord>(store, config.topics.telemetry, 'telemetry', 2),
    // v2 names each record's window definition; with one definition v1, as it always was.
    featuresCodec: await createTopicCodec<FeatureRecord>(store, config.topics.features, 'features', config.windows.length > 1 ? 2 : 1),
    log,
    config: {
      service: config.service,
      groupId: config.groupId,
      window: config.window,
      windows: config.windows,
      partitions: config.partitions,
      maxBytesPerPartition: config.maxBytesPerPartition,
      fetchMinBytes: config.fetchMinBytes,
      fetchMaxWaitMs: config.fetchMaxWaitMs,
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
  const health = await startHealthServer(config.healthPort, readiness.failing, { metrics });
  const probe = probeKafka(kafka, readiness);
  await windowing.start();
  // After start (the topics exist). Committed offsets lag by the open windows' records by design (see the gauge's HELP).
  const lag = startConsumerLagPoller({ kafka, registry: metrics, groups: [{ groupId: config.groupId, topics: [config.topics.telemetry] }], log });
  onShutdown(log, async () => {
    readiness.stop();
    await windowing.close();
    await lag.stop();
    await probe.stop();
    await health.close();
  });
});
