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
  startHealthServer,
  type ReceiptRecord,
  type TelemetryRecord,
} from '@pitwall/common';
import { readIngestConfig } from './config.js';
import { createIngest } from './ingest.js';

runMain('ingest', async () => {
  const config = readIngestConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const registry = createSchemaStore(config.registryUrl, config.registryCredentials);
  // v2 must stay readable by v1 readers' successors: every new version is checked by the registry.
  const codec = await createTopicCodec<TelemetryRecord>(registry, config.topics.telemetry, 'telemetry', 2);
  const receiptCodec = await createTopicCodec<ReceiptRecord>(registry, config.topics.receipts, 'receipt', 1);
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const readiness = serviceReadiness(config, log, createCounters(READINESS_COUNTERS, metrics));
  exportReadiness(metrics, readiness.checks);
  const kafka = createKafka(config, log);
  const ingest = createIngest({
    kafka,
    readiness,
    metrics,
    codec,
    receiptCodec,
    log,
    config: {
      service: config.service,
      mqttUrl: config.mqtt.url,
      mqttOptions: mqttOptions(config, { clientId: config.mqttClientId, clean: false, properties: { sessionExpiryInterval: config.sessionExpirySeconds, receiveMaximum: config.receiveMaximum } }),
      subscription: config.subscription,
      receiptSubscription: config.receiptSubscription,
      topics: { telemetry: config.topics.telemetry, receipts: config.topics.receipts, dlq: config.topics.telemetryDlq },
      partitions: config.partitions,
      limits: { maxPayloadBytes: config.maxPayloadBytes, maxFutureSkewMs: config.maxFutureSkewMs },
      profile: config.profile,
      maxBatch: config.maxBatch,
      lingerMs: config.lingerMs,
      maxBatchBytes: config.kafka.maxBatchBytes,
    },
  });
  const health = await startHealthServer(config.healthPort, readiness.failing, { metrics });
  const probe = probeKafka(kafka, readiness);
  await ingest.start();
  onShutdown(log, async () => {
    readiness.stop();
    await ingest.close();
    await probe.stop();
    await health.close();
  });
});
