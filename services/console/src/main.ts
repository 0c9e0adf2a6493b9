import {
  createKafka,
  createLogger,
  createSchemaStore,
  createTopicCodec,
  onShutdown,
  runMain,
  type IncidentCommandRecord,
  type IncidentRecord,
  type ScoreRecord,
  type TelemetryRecord,
} from '@pitwall/common';
import { readConsoleConfig } from './config.js';
import { createConsole } from './console.js';

runMain('console', async () => {
  const config = readConsoleConfig(process.env);
  const log = createLogger({ service: config.service, level: config.logLevel });
  const store = createSchemaStore(config.registryUrl);
  const codec = <T>(topic: string, record: string, version: number) => createTopicCodec<T>(store, topic, record, version);
  const app = createConsole({
    kafka: createKafka(config, log),
    codecs: {
      incidents: await codec<IncidentRecord>(config.topics.incidents, 'incident', 1),
      scores: await codec<ScoreRecord>(config.topics.scores, 'score', 1),
      commands: await codec<IncidentCommandRecord>(config.topics.incidentCommands, 'incident-command', 1),
      // The v2 reader: v1 records resolve to it with ignition_on = null.
      telemetry: await codec<TelemetryRecord>(config.topics.telemetry, 'telemetry', 2),
    },
    log,
    config: {
      service: config.service,
      port: config.port,
      users: config.users,
      sessionSecret: config.sessionSecret,
      sessionTtlMs: config.sessionTtlMs,
      cookieSecure: config.cookieSecure,
      groupIdPrefix: config.groupIdPrefix,
      partitions: config.partitions,
      scoresLookbackMs: config.scoresLookbackMs,
      topics: { incidents: config.topics.incidents, scores: config.topics.scores, incidentCommands: config.topics.incidentCommands, telemetry: config.topics.telemetry },
      telemetry: config.telemetry,
    },
  });
  onShutdown(log, () => app.close());
  await app.start();
});
