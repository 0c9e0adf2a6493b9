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
  type IncidentCommandRecord,
  type IncidentRecord,
  type ReceiptRecord,
  type ScoreRecord,
} from '@pitwall/common';
import { readIncidentsConfig } from './config.js';
import { createIncidents } from './incidents.js';

runMain('incidents', async () => {
  const config = readIncidentsConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  const { topics } = config;
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const readiness = serviceReadiness(config, log, createCounters(READINESS_COUNTERS, metrics));
  exportReadiness(metrics, readiness.checks);
  const kafka = createKafka(config, log);
  const incidents = createIncidents({
    kafka,
    readiness,
    metrics,
    codecs: {
      score: await createTopicCodec<ScoreRecord>(store, topics.scores, 'score', 1),
      command: await createTopicCodec<IncidentCommandRecord>(store, topics.incidentCommands, 'incident-command', 1),
      receipt: await createTopicCodec<ReceiptRecord>(store, topics.receipts, 'receipt', 1),
      incident: await createTopicCodec<IncidentRecord>(store, topics.incidents, 'incident', 1),
    },
    log,
    // Exactly-once makes an abrupt exit safe: whatever was not committed is redone by the next owner.
    onFatal: () => process.exit(1),
    config: {
      service: config.service,
      groupId: config.groupId,
      partitions: config.partitions,
      transactionalIdPrefix: config.transactionalIdPrefix,
      clearAfterWindows: config.clearAfterWindows,
      sessionTimeoutMs: config.sessionTimeoutMs,
      maxBytesPerPartition: config.maxBytesPerPartition,
      maxBatchBytes: config.kafka.maxBatchBytes,
      topics: { scores: topics.scores, commands: topics.incidentCommands, receipts: topics.receipts, incidents: topics.incidents, dlq: config.dlqTopic },
    },
  });
  const health = await startHealthServer(config.healthPort, readiness.failing, { metrics });
  const probe = probeKafka(kafka, readiness);
  await incidents.start();
  // After start: the topics exist.
  const lag = startConsumerLagPoller({ kafka, registry: metrics, groups: [{ groupId: config.groupId, topics: [topics.scores, topics.incidentCommands, topics.receipts] }], log });
  onShutdown(log, async () => {
    readiness.stop();
    await incidents.close();
    await lag.stop();
    await probe.stop();
    await health.close();
  });
});
