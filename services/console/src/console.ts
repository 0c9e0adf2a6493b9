/**
 * The fleet-operator web console: one node:http server for the pages, the JSON API, the live
 * stream (SSE) and /healthz /readyz.
 *
 * Data: maintenance.incidents (compacted) is read from its beginning and then followed, with a
 * throw-away consumer group and read_committed, into an in-memory view; vehicle.scores is read
 * from CONSOLE_SCORES_LOOKBACK_S ago for each vehicle's latest score. Nothing is committed: every
 * start rebuilds the views, so several consoles can run side by side. Operators' acknowledge and
 * resolve actions become IncidentCommandRecords on maintenance.incident-commands (key vehicle_id);
 * the incidents service applies them and the new incident revision comes back on the stream.
 *
 * Routes (everything but /login, /static/, /vendor/, the probes and /metrics needs a session):
 *   GET  /login, POST /login, POST /logout
 *   GET  /, /vehicles/<id>                       the app (one page, routed in the browser)
 *   GET  /api/me | /api/incidents | /api/incidents/<id> | /api/fleet | /api/vehicles/<id>
 *   GET  /api/vehicles/<id>/telemetry?incident=<id> (or &from=&to= epoch ms)
 *   GET  /api/stream                             SSE: `snapshot`, then `incident` and `vehicles`
 *   POST /api/incidents/<id>/ack | /resolve      JSON {note?}; role operator or admin
 *   POST /api/sessions/revoke                    JSON {user?}: every session of a user (admin; anyone for themselves)
 * Every POST needs an Origin (or Referer) in CONSOLE_ALLOWED_ORIGINS.
 *
 * Security state lives in Kafka: sign-outs and revocations on the compacted sessions topic (read
 * from its beginning before the HTTP server listens, then followed, so a revoked cookie is refused
 * by every replica and after restarts), and an audit record of every operator action on the audit
 * topic, written before the action's response.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kafka, Producer } from 'kafkajs';
import {
  createCounters,
  createMetricsRegistry,
  createReadiness,
  exportReadiness,
  isVehicleId,
  provisionTopics,
  SENSORS,
  serveMetrics,
  isIncidentOpen,
  VEHICLE_ID_RULE,
  type AvroCodec,
  type IncidentAction,
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
import { clip, createAuditTrail, type WriteRecord } from './audit.js';
import { createAuth, safeNext, type AuthSettings } from './auth.js';
import { HttpError, formOrJson, json, notFoundText, redirect, requestListener } from './http.js';
import { createLive } from './live.js';
import { COUNTERS, METRICS } from './metrics.js';
import { can } from './passwords.js';
import { startIncidentReader } from './readers/incidents.js';
import { createScoreReader } from './readers/scores.js';
import { startRevocationReader } from './readers/sessions.js';
import { clearedSessionCookie } from './session.js';
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
const NOTE_LIMIT = 500;
/** Revocations outlive the longest session (CONSOLE_SESSION_TTL_S is at most 30 days). */
const SESSIONS_RETENTION_MS = 31 * 86_400_000;
const AUDIT_RETENTION_MS = 400 * 86_400_000;

export function createConsole(deps: ConsoleDeps): Console {
  const { config, log, kafka } = deps;
  const now = deps.now ?? Date.now;
  const registry = deps.metrics ?? createMetricsRegistry({ processMetrics: false });
  const counters = createCounters(COUNTERS, registry);
  const tracker = deps.readiness ?? createReadiness({ log });
  exportReadiness(registry, () => ({ ...readiness(), ...tracker.checks() }));
  const incidents = createIncidentStore();
  const fleet = createFleetView(incidents);
  const closedRetentionMs = config.closedRetentionMs ?? 86_400_000;
  const listIncidents = () => incidents.list(now(), closedRetentionMs, LIST_LIMIT);
  const live = createLive({ now, counters, fleet, listIncidents, heartbeatMs: config.heartbeatMs });
  const telemetry = createTelemetryReader(kafka, deps.codecs.telemetry, log, {
    topic: config.topics.telemetry,
    groupIdPrefix: config.groupIdPrefix,
    maxScan: config.telemetry.maxScan,
    maxPoints: config.telemetry.maxPoints,
  });
  const files = createStaticFiles();
  let server: http.Server | undefined;
  let producer: Producer | undefined;
  let incidentsReader: TopicReader | undefined;
  let sessionsReader: TopicReader | undefined;
  let producerUp = false;

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
    readiness: tracker,
    metrics: registry,
  });

  const writeCommand = async (incidentId: string, action: IncidentAction, operator: string, note: string | null): Promise<{ status: number; body: unknown }> => {
    const incident = incidents.get(incidentId);
    if (!incident) throw new HttpError(404, 'not_found', `no incident ${incidentId}`);
    if (action === 'ACKNOWLEDGE' && incident.status !== 'OPEN') {
      throw new HttpError(409, 'conflict', `incident ${incidentId} is ${incident.status}; only an OPEN incident can be acknowledged`);
    }
    if (action === 'RESOLVE' && !isIncidentOpen(incident)) throw new HttpError(409, 'conflict', `incident ${incidentId} is already ${incident.status}`);
    if (!producer || !producerUp) throw new HttpError(503, 'unavailable', 'not connected to Kafka yet; try again shortly');
    const command: IncidentCommandRecord = {
      command_id: randomUUID(),
      incident_id: incident.incident_id,
      vehicle_id: incident.vehicle_id,
      action,
      operator,
      note,
      issued_at: now(),
    };
    await producer.send({
      topic: config.topics.incidentCommands,
      acks: -1,
      messages: [{ key: incident.vehicle_id, value: deps.codecs.commands.encode(command), headers: { 'pitwall.source': 'console' } }],
    });
    counters.inc(METRICS.commandsWritten, 1, action);
    log.info('incident command written', { commandId: command.command_id, incidentId, vehicleId: incident.vehicle_id, action, operator, revision: incident.revision });
    return { status: 202, body: { command_id: command.command_id, incident_id: incidentId, action, revision: incident.revision } };
  };

  const readTelemetry = cacheReads((q) => {
    counters.inc(METRICS.telemetryReads);
    return telemetry.read(q);
  }, now);

  // ------------------------------------------------------------------ HTTP

  const writeRecord: WriteRecord =
    deps.writeRecord ??
    (async (topic, key, value) => {
      if (!producer || !producerUp) throw new HttpError(503, 'unavailable', 'not connected to Kafka yet; try again shortly');
      await producer.send({ topic, acks: -1, messages: [{ key, value: JSON.stringify(value), headers: { 'pitwall.source': 'console' } }] });
    });

  const audit = createAuditTrail({ topic: config.consoleTopics.audit, writeRecord, now, log, counters });

  const auth = createAuth({ config, now, log, counters, audit, writeRecord, onRevoked: (isRevoked) => live.endRevoked(isRevoked) });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const p = url.pathname;
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';

    if (p === '/healthz') return json(res, 200, { status: 'ok' });
    if (p === '/metrics') return serveMetrics(registry, res);
    if (p === '/readyz') {
      const reasons = {
        ...Object.fromEntries(
          Object.entries(readiness())
            .filter(([, ok]) => !ok)
            .map(([n]) => [n, 'not yet']),
        ),
        ...tracker.failing(),
      };
      const failing = Object.keys(reasons);
      return json(res, failing.length ? 503 : 200, { status: failing.length ? 'not-ready' : 'ready', failing, reasons });
    }
    if (isRead && (p.startsWith('/static/') || p.startsWith('/vendor/') || p === '/favicon.svg')) {
      if (files.serve(req, res, p === '/favicon.svg' ? '/static/favicon.svg' : p)) return;
      return notFoundText(res);
    }
    const principal = auth.principalOf(req);
    const session = principal?.session ?? null;
    if (p === '/login') {
      if (method === 'POST') return auth.signIn(req, res);
      if (!isRead) throw new HttpError(405, 'method_not_allowed', 'GET or POST');
      if (session) return redirect(res, safeNext(url.searchParams.get('next')));
      files.serve(req, res, '/static/login.html', { 'cache-control': 'no-store' });
      return;
    }
    if (p === '/logout') {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'sign out with POST');
      if (auth.refuseOrigin(req, res)) return;
      if (principal) {
        const { session: s, role } = principal;
        await auth.publishRevocation({ type: 'session', sid: s.sid, user: s.user, exp: s.exp, at: now(), by: s.user });
        await audit.quietly({ user: s.user, role, action: 'sign-out', outcome: 'ok', client: auth.clientOf(req), session: s.sid });
        log.info('signed out', { user: s.user });
      }
      return redirect(res, '/login?signed_out=1', { 'set-cookie': clearedSessionCookie(auth.secureFor(req)) });
    }

    const isApi = p === '/api' || p.startsWith('/api/');
    if (!principal || !session) {
      counters.inc(METRICS.requestsRefused, 1, 'unauthenticated');
      if (isApi || !isRead) return json(res, 401, { error: 'unauthenticated', message: 'sign in first (POST /login)' });
      return redirect(res, `/login${p === '/' ? '' : `?next=${encodeURIComponent(p + url.search)}`}`);
    }
    if (!isRead && auth.refuseOrigin(req, res, 'cross-origin or Origin-less writes are refused')) return;

    if (!isApi) {
      if (isRead && (p === '/' || /^\/vehicles\/[^/]+$/.test(p))) {
        files.serve(req, res, '/static/app.html', { 'cache-control': 'no-store' });
        return;
      }
      return notFoundText(res);
    }

    const seg = p
      .split('/')
      .slice(2)
      .map((s) => decodeURIComponent(s));
    if (isRead) {
      if (seg[0] === 'me' && seg.length === 1) {
        const { role } = principal;
        return json(res, 200, { user: session.user, role, can: { act: can(role, 'act'), revoke_others: can(role, 'revokeOthers') }, expires_at: session.exp });
      }
      if (seg[0] === 'stream' && seg.length === 1) return live.stream({ req, res, url, principal });
      if (seg[0] === 'incidents' && seg.length === 1) return json(res, 200, { incidents: listIncidents() });
      if (seg[0] === 'incidents' && seg.length === 2) {
        const i = incidents.get(seg[1]!);
        if (!i) throw new HttpError(404, 'not_found', `no incident ${seg[1]}`);
        return json(res, 200, { incident: i });
      }
      if (seg[0] === 'fleet' && seg.length === 1) return json(res, 200, { counts: fleet.counts(), vehicles: fleet.all() });
      if (seg[0] === 'vehicles' && seg.length >= 2 && !isVehicleId(seg[1]!)) throw new HttpError(400, 'bad_request', `a vehicle id is ${VEHICLE_ID_RULE}`);
      if (seg[0] === 'vehicles' && seg.length === 2) {
        return json(res, 200, { vehicle: fleet.summary(seg[1]!), incidents: incidents.forVehicle(seg[1]!) });
      }
      if (seg[0] === 'vehicles' && seg.length === 3 && seg[2] === 'telemetry') {
        const vehicleId = seg[1]!;
        let from: number;
        let to: number;
        const incidentId = url.searchParams.get('incident');
        let incident: IncidentRecord | undefined;
        if (incidentId) {
          incident = incidents.get(incidentId);
          if (!incident || incident.vehicle_id !== vehicleId) throw new HttpError(404, 'not_found', `no incident ${incidentId} for vehicle ${vehicleId}`);
          from = incident.first_window_start - config.telemetry.beforeMs;
          to = incident.first_window_start + config.telemetry.afterMs;
        } else {
          from = Number(url.searchParams.get('from'));
          to = Number(url.searchParams.get('to'));
          if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) throw new HttpError(400, 'bad_request', 'give ?incident=<id> or ?from=&to= (epoch ms, from < to)');
          if (to - from > 3_600_000) throw new HttpError(400, 'bad_request', 'at most one hour per request');
        }
        const series = await readTelemetry({ vehicleId, from, to });
        return json(res, 200, {
          ...series,
          incident: incident ? { incident_id: incident.incident_id, first_window_start: incident.first_window_start, last_anomalous_window_end: incident.last_anomalous_window_end } : null,
          specs: SENSORS.map((x) => ({ name: x.name, unit: x.unit, group: x.group, plausible: x.plausible })),
          limits: { max_scan: config.telemetry.maxScan, max_points: config.telemetry.maxPoints },
        });
      }
      throw new HttpError(404, 'not_found', `no route GET ${p}`);
    }
    if (method === 'POST' && seg[0] === 'incidents' && seg.length === 3 && (seg[2] === 'ack' || seg[2] === 'resolve')) {
      const action = seg[2] === 'ack' ? 'acknowledge' : 'resolve';
      const incident = incidents.get(seg[1]!);
      const subject = { incident_id: seg[1]!, ...(incident ? { vehicle_id: incident.vehicle_id } : {}) };
      if (!can(principal.role, 'act')) {
        const entry = { user: session.user, role: principal.role, action, outcome: 'forbidden', client: auth.clientOf(req), session: session.sid, ...subject } as const;
        return auth.forbid(res, entry, `the ${principal.role} role may not ${action} incidents (operator or admin only)`);
      }
      const body = await formOrJson(req);
      let note: string | null = null;
      if (body.note !== undefined && body.note !== null) {
        if (typeof body.note !== 'string') throw new HttpError(400, 'bad_request', 'note must be a string');
        note = body.note.trim() === '' ? null : body.note.trim();
        if (note !== null && note.length > NOTE_LIMIT) throw new HttpError(400, 'bad_request', `note is longer than ${NOTE_LIMIT} characters`);
      }
      const { status, body: out } = await writeCommand(seg[1]!, seg[2] === 'ack' ? 'ACKNOWLEDGE' : 'RESOLVE', session.user, note);
      const commandId = (out as { command_id: string }).command_id;
      await audit.record({ user: session.user, role: principal.role, action, outcome: 'ok', client: auth.clientOf(req), session: session.sid, ...subject, command_id: commandId, note });
      return json(res, status, out);
    }
    if (method === 'POST' && seg[0] === 'sessions' && seg[1] === 'revoke' && seg.length === 2) {
      const body = await formOrJson(req);
      if (body.user !== undefined && typeof body.user !== 'string') throw new HttpError(400, 'bad_request', 'user must be a string');
      const target = typeof body.user === 'string' && body.user.trim() !== '' ? body.user.trim() : session.user;
      const client = auth.clientOf(req);
      if (target !== session.user && !can(principal.role, 'revokeOthers')) {
        const entry = { user: session.user, role: principal.role, action: 'revoke-sessions', outcome: 'forbidden', client, session: session.sid, target_user: clip(target, 64) ?? '' } as const;
        return auth.forbid(res, entry, `the ${principal.role} role may only revoke its own sessions (admin for others)`);
      }
      if (!config.users.has(target)) throw new HttpError(404, 'not_found', `no user ${clip(target, 64)}`);
      const before = now();
      await auth.publishRevocation({ type: 'user', user: target, before, at: before, by: session.user });
      await audit.record({ user: session.user, role: principal.role, action: 'revoke-sessions', outcome: 'ok', client, session: session.sid, target_user: target });
      const self = target === session.user;
      return json(res, 200, { user: target, revoked_before: before }, self ? { 'set-cookie': clearedSessionCookie(auth.secureFor(req)) } : {});
    }
    throw new HttpError(isRead ? 404 : 405, isRead ? 'not_found' : 'method_not_allowed', `no route ${method} ${p}`);
  };

  const handler = requestListener(route, log);

  const readiness = (): Record<string, boolean> => ({ incidents: live.started(), producer: producerUp, scores: scores.up(), http: Boolean(server?.listening) });

  return {
    async start() {
      await files.load(config.publicDir ?? defaultPublicDir());
      await provisionTopics(
        kafka,
        [
          { topic: config.topics.incidents, configEntries: { 'cleanup.policy': 'compact' } },
          { topic: config.topics.incidentCommands },
          { topic: config.topics.scores },
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
      const startedAt = now();
      incidentsReader = await startIncidentReader(kafka, {
        topic: config.topics.incidents,
        groupIdPrefix: config.groupIdPrefix,
        codec: deps.codecs.incidents,
        incidents,
        live,
        counters,
        log,
        readiness: tracker,
        metrics: registry,
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
      await producer?.disconnect();
      producerUp = false;
    },
    ready: () => Object.values(readiness()).every(Boolean) && tracker.ready(),
    stats: () => ({ ...counters.snapshot(), incidents: incidents.size(), streams: live.size() }),
    port: () => (server?.address() as AddressInfo | null)?.port ?? config.port,
    handler,
  };
}
