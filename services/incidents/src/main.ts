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
  const store = createSchemaStore(config.registryUrl);
  const { topics } = config;
  const readiness = serviceReadiness(config, log);
  const kafka = createKafka(config, log);
  const incidents = createIncidents({
    kafka,
    readiness,
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
  const health = await startHealthServer(config.healthPort, readiness.failing);
  const probe = probeKafka(kafka, readiness);
  await incidents.start();
  onShutdown(log, async () => {
    readiness.stop();
    await incidents.close();
    await probe.stop();
    await health.close();
  });
});
