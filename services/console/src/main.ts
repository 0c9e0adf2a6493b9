import {
  createCounters,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaStore,
  createTopicCodec,
  onShutdown,
  probeKafka,
  READINESS_COUNTERS,
  runMain,
  serviceReadiness,
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
  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  const codec = <T>(topic: string, record: string, version: number) => createTopicCodec<T>(store, topic, record, version);
  // One metrics registry for the process, served on the console port's /metrics.
  const metrics = createMetricsRegistry();
  const readiness = serviceReadiness(config, log, createCounters(READINESS_COUNTERS, metrics));
  const kafka = createKafka(config, log);
  const probe = probeKafka(kafka, readiness);
  const app = createConsole({
    kafka,
    readiness,
    metrics,
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
      trustedProxies: config.trustedProxies,
      allowedOrigins: config.allowedOrigins,
      sessionSecret: config.sessionSecret,
      sessionTtlMs: config.sessionTtlMs,
      cookieSecure: config.cookieSecure,
      groupIdPrefix: config.groupIdPrefix,
      partitions: config.partitions,
      scoresLookbackMs: config.scoresLookbackMs,
      drift: { topic: config.topics.driftReports, lookbackMs: config.driftLookbackMs, staleMs: config.driftStaleMs },
      topics: { incidents: config.topics.incidents, scores: config.topics.scores, incidentCommands: config.topics.incidentCommands, telemetry: config.topics.telemetry },
      consoleTopics: config.consoleTopics,
      telemetry: config.telemetry,
    },
  });
  onShutdown(log, async () => {
    readiness.stop();
    await app.close();
    await probe.stop();
  });
  await app.start();
});
