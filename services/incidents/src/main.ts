import {
  createKafka,
  createLogger,
  createSchemaStore,
  createTopicCodec,
  onShutdown,
  runMain,
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
  const incidents = createIncidents({
    kafka: createKafka(config, log),
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
      topics: { scores: topics.scores, commands: topics.incidentCommands, receipts: topics.receipts, incidents: topics.incidents, dlq: config.dlqTopic },
    },
  });
  await incidents.start();
  const health = await startHealthServer(config.healthPort, { incidents: incidents.ready });
  onShutdown(log, async () => {
    await incidents.close();
    await health.close();
  });
});
