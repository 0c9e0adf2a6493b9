/**
 * The fleet-operator web console: one node:http server for the pages, the JSON API, the live
 * stream (SSE) and /healthz /readyz /metrics (routes.ts lists the routes).
 *
 * Data: maintenance.incidents (compacted) is read from its beginning and then followed, with a
 * throw-away consumer group and read_committed, into an in-memory view; vehicle.scores is read
 * from CONSOLE_SCORES_LOOKBACK_S ago for each vehicle's latest score. Nothing is committed: every
 * start rebuilds the views, so several consoles can run side by side. Operators' acknowledge and
 * resolve actions become IncidentCommandRecords on maintenance.incident-commands (key vehicle_id);
 * the incidents service applies them and the new incident revision comes back on the stream.
 *
 * Security state lives in Kafka: sign-outs and revocations on the compacted sessions topic (read
 * from its beginning before the HTTP server listens, then followed, so a revoked cookie is refused
 * by every replica and after restarts), and an audit record of every operator action on the audit
 * topic, written before the action's response.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import {
  createCounters,
  createMetricsRegistry,
  createReadiness,
  exportReadiness,
  provisionTopics,
  type AvroCodec,
  type IncidentCommandRecord,
  type IncidentRecord,
  type Logger,
  type Readiness,
  type Registry,
  type ScoreRecord,
  type Service,
  type TelemetryRecord,
  type TopicReader,
} from '@pitwall/common';
import { createAuditTrail, type WriteRecord } from './audit.js';
import { createAuth, type AuthSettings } from './auth.js';
import { HttpError, requestListener } from './http.js';
import { createLive } from './live.js';
import { COUNTERS, METRICS } from './metrics.js';
import { startIncidentReader } from './readers/incidents.js';
import { createScoreReader } from './readers/scores.js';
import { createDriftReader } from './readers/drift.js';
import { createDriftView } from './drift.js';
import { startRevocationReader } from './readers/sessions.js';
import { createRoutes } from './routes.js';
import { createFleetView, createIncidentStore } from './state.js';
import { createStaticFiles, defaultPublicDir } from './static.js';
import { cacheReads, createTelemetryReader } from './telemetry.js';

/** Accounts, sessions and the origins allowed to write are AuthSettings. */
export interface ConsoleSettings extends AuthSettings {
  service: string;
  port: number;
  host?: string;
  groupIdPrefix: string;
  partitions: number;
  scoresLookbackMs: number;
  topics: { incidents: string; scores: string; incidentCommands: string; telemetry: string };
  /** Revocations (compacted) and the audit trail (JSON values). */
  consoleTopics: { sessions: string; audit: string };
  telemetry: { beforeMs: number; afterMs: number; maxScan: number; maxPoints: number };
  /**
   * model.drift (scoring's drift records): read from lookbackMs ago and followed; a replica's
   * fleet record older than staleMs is left out of the fleet's drift. Absent: no drift shown.
   */
  drift?: { topic: string; lookbackMs: number; staleMs: number };
  /** Closed incidents stay in the list this long (default 24 h). */
  closedRetentionMs?: number;
  heartbeatMs?: number;
  publicDir?: string;
}

export interface ConsoleDeps {
  kafka: Kafka;
  codecs: {
    incidents: AvroCodec<IncidentRecord>;
    scores: AvroCodec<ScoreRecord>;
    commands: AvroCodec<IncidentCommandRecord>;
    telemetry: AvroCodec<TelemetryRecord>;
  };
  log: Logger;
  config: ConsoleSettings;
  now?: () => number;
  /** Revocations and audit records. Default: the console's producer. Tests without Kafka pass their own. */
  writeRecord?: WriteRecord;
  /** Readiness checks besides the console's own (main.ts adds the Kafka probe); one of its own when absent. */
  readiness?: Readiness;
  /** Served on GET /metrics, with the counters and readiness (main.ts adds the process metrics); a private one when absent. */
  metrics?: Registry;
}

export interface Console extends Service {
  /** The HTTP port actually bound (useful with port 0). */
  port(): number;
  /** The request handler, usable without start() for routes that need no Kafka (tests). */
  readonly handler: http.RequestListener;
}

const LIST_LIMIT = 1000;
/** Revocations outlive the longest session (CONSOLE_SESSION_TTL_S is at most 30 days). */
const SESSIONS_RETENTION_MS = 31 * 86_400_000;
const AUDIT_RETENTION_MS = 400 * 86_400_000;

export function createConsole(deps: ConsoleDeps): Console {
  const { config, log, kafka } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? createMetricsRegistry({ processMetrics: false });
  const counters = createCounters(COUNTERS, metrics);
  const readiness = deps.readiness ?? createReadiness({ log });
  exportReadiness(metrics, () => ({ ...ownChecks(), ...readiness.checks() }));
  const incidents = createIncidentStore();
  const fleet = createFleetView(incidents);
  const closedRetentionMs = config.closedRetentionMs ?? 86_400_000;
  const listIncidents = () => incidents.list(now(), closedRetentionMs, LIST_LIMIT);
  const live = createLive({ now, counters, fleet, listIncidents, heartbeatMs: config.heartbeatMs });
  const files = createStaticFiles();
  let server: http.Server | undefined;
  let producer: Producer | undefined;
  let producerUp = false;
  let incidentsReader: TopicReader | undefined;
  let sessionsReader: TopicReader | undefined;

  const connectedProducer = (): Producer => {
    if (!producer || !producerUp) throw new HttpError(503, 'unavailable', 'not connected to Kafka yet; try again shortly');
    return producer;
  };
  const writeRecord =
    deps.writeRecord ??
    (async (topic: string, key: string, value: unknown): Promise<void> => {
      await connectedProducer().send({ topic, acks: -1, messages: [{ key, value: JSON.stringify(value), headers: { 'pitwall.source': 'console' } }] });
    });
  const audit = createAuditTrail({ topic: config.consoleTopics.audit, writeRecord, now, log, counters });
  const auth = createAuth({ config, now, log, counters, audit, writeRecord, onRevoked: (isRevoked) => live.endRevoked(isRevoked) });
  const scores = createScoreReader(kafka, {
    topic: config.topics.scores,
    groupIdPrefix: config.groupIdPrefix,
    lookbackMs: config.scoresLookbackMs,
    codec: deps.codecs.scores,
    fleet,
    live,
    now,
    counters,
    log,
    readiness,
    metrics,
  });
  const telemetry = createTelemetryReader(kafka, deps.codecs.telemetry, log, {
    topic: config.topics.telemetry,
    groupIdPrefix: config.groupIdPrefix,
    maxScan: config.telemetry.maxScan,
    maxPoints: config.telemetry.maxPoints,
  });
  const readTelemetry = cacheReads((q) => {
    counters.inc(METRICS.telemetryReads);
    return telemetry.read(q);
  }, now);
  const drift = createDriftView({ now, staleMs: config.drift?.staleMs ?? 300_000 });
  const driftReader = config.drift
    ? createDriftReader(kafka, { topic: config.drift.topic, groupIdPrefix: config.groupIdPrefix, lookbackMs: config.drift.lookbackMs, drift, now, counters, log, readiness, metrics })
    : undefined;
  const ownChecks = (): Record<string, boolean> => ({
    incidents: live.started(),
    producer: producerUp,
    scores: scores.up(),
    ...(driftReader ? { drift: driftReader.up() } : {}),
    http: Boolean(server?.listening),
  });

  const handler = requestListener(
    createRoutes({
      auth,
      audit,
      live,
      files,
      metrics,
      readiness,
      ownChecks,
      users: config.users,
      incidents,
      fleet,
      listIncidents,
      commandsTopic: config.topics.incidentCommands,
      commandCodec: deps.codecs.commands,
      producer: connectedProducer,
      telemetry: config.telemetry,
      readTelemetry,
      drift,
      now,
      counters,
      log,
    }),
    log,
  );

  return {
    async start() {
      await files.load(config.publicDir ?? defaultPublicDir());
      await provisionTopics(
        kafka,
        [
          { topic: config.topics.incidents, configEntries: { 'cleanup.policy': 'compact' } },
          { topic: config.topics.incidentCommands },
          { topic: config.topics.scores },
          // As scoring creates it (drift.ts): compacted, a day.
          ...(config.drift ? [{ topic: config.drift.topic, configEntries: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(86_400_000) } }] : []),
          // Compacted by session id; deleted once no session it names can still be alive.
          { topic: config.consoleTopics.sessions, numPartitions: 1, configEntries: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(SESSIONS_RETENTION_MS) } },
          { topic: config.consoleTopics.audit, configEntries: { 'retention.ms': String(AUDIT_RETENTION_MS) } },
        ],
        { partitions: config.partitions },
      );
      // Every revocation there is, before the first request: a restarted replica must not
      // accept a cookie that was signed out before it started.
      sessionsReader = await startRevocationReader(kafka, { topic: config.consoleTopics.sessions, groupIdPrefix: config.groupIdPrefix, log, apply: auth.applyRevocation });
      await sessionsReader.caughtUp;
      server = http.createServer(handler);
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.port, config.host ?? '0.0.0.0', () => resolve());
      });
      producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
      await producer.connect();
      producerUp = true;
      producer.on(producer.events.DISCONNECT, () => (producerUp = false));
      producer.on(producer.events.CONNECT, () => (producerUp = true));
      await scores.start();
      await driftReader?.start();
      const startedAt = now();
      incidentsReader = await startIncidentReader(kafka, {
        topic: config.topics.incidents,
        groupIdPrefix: config.groupIdPrefix,
        codec: deps.codecs.incidents,
        incidents,
        live,
        counters,
        log,
        readiness,
        metrics,
      });
      await incidentsReader.caughtUp;
      live.start();
      log.info('console started', { port: (server.address() as AddressInfo).port, incidents: incidents.size(), rebuildMs: now() - startedAt });
    },
    async close() {
      live.close();
      const closed = new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server?.closeAllConnections();
      await closed;
      await incidentsReader?.stop();
      await sessionsReader?.stop();
      await scores.stop();
      await driftReader?.stop();
      await producer?.disconnect();
      producerUp = false;
    },
    ready: () => Object.values(ownChecks()).every(Boolean) && readiness.ready(),
    stats: () => ({ ...counters.snapshot(), incidents: incidents.size(), streams: live.size() }),
    port: () => (server?.address() as AddressInfo | null)?.port ?? config.port,
    handler,
  };
}
