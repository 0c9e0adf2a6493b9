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
import { randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
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
import { clip, createAuditTrail, type AuditRecord, type WriteRecord } from './audit.js';
import { HttpError, formOrJson, json, notFoundText, redirect, requestListener } from './http.js';
import { createLive } from './live.js';
import { COUNTERS, METRICS } from './metrics.js';
import { requestOriginAllowed } from './origins.js';
import { can, verifyPassword, type Role, type Users } from './passwords.js';
import { NO_TRUSTED_PROXIES, clientAddress, isHttps, type TrustedProxies } from './proxy.js';
import { DEFAULT_SIGN_IN_LIMITS, createSignInLimiter, type SignInLimits } from './rate-limit.js';
import { startIncidentReader } from './readers/incidents.js';
import { createScoreReader } from './readers/scores.js';
import { startRevocationReader } from './readers/sessions.js';
import {
  SESSION_COOKIE,
  clearedSessionCookie,
  createRevocations,
  newSession,
  parseCookies,
  revocationKey,
  sessionCookie,
  signSession,
  verifySession,
  type RevocationRecord,
  type Session,
} from './session.js';
import { createFleetView, createIncidentStore } from './state.js';
import { createStaticFiles, defaultPublicDir } from './static.js';
import { cacheReads, createTelemetryReader } from './telemetry.js';

export interface ConsoleSettings {
  service: string;
  port: number;
  host?: string;
  /** Accounts from CONSOLE_USERS (password hashes and roles). */
  users: Users;
  /** HMAC key of session cookies; random per start when undefined. */
  sessionSecret: string | undefined;
  sessionTtlMs: number;
  /** Always mark the cookie Secure (otherwise only for requests that came over HTTPS). */
  cookieSecure: boolean;
  /** Proxies whose X-Forwarded-For/-Proto are believed (default none). */
  trustedProxies?: TrustedProxies;
  /** Origins allowed to send state-changing requests. */
  allowedOrigins: ReadonlySet<string>;
  signInLimits?: SignInLimits;
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
/** Password checks running at once (32 MiB of scrypt memory each) and waiting at most. */
const VERIFY_CONCURRENCY = 2;
const VERIFY_QUEUE = 64;
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
  const secret = config.sessionSecret ?? randomBytes(32);
  const revocations = createRevocations(config.sessionTtlMs);
  const trusted = config.trustedProxies ?? NO_TRUSTED_PROXIES;
  const limiter = createSignInLimiter(config.signInLimits ?? DEFAULT_SIGN_IN_LIMITS, now);
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

  /** The request's session and the user's current role; null when signed out, revoked or no longer a user. */
  const principalOf = (req: IncomingMessage): { session: Session; role: Role } | null => {
    const s = verifySession(parseCookies(req.headers.cookie)[SESSION_COOKIE], secret, now());
    const user = s ? config.users.get(s.user) : undefined;
    return s && user && !revocations.isRevoked(s, now()) ? { session: s, role: user.role } : null;
  };

  const clientOf = (req: IncomingMessage): AuditRecord['client'] => ({
    address: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted),
    user_agent: clip(req.headers['user-agent'], 256),
  });
  /** Secure cookie: always when configured, else when the browser reached us over HTTPS. */
  const secureFor = (req: IncomingMessage): boolean =>
    config.cookieSecure || isHttps(Boolean((req.socket as TLSSocket).encrypted), req.socket.remoteAddress, req.headers['x-forwarded-proto'], trusted);
  const originOk = (req: IncomingMessage): boolean => requestOriginAllowed(req.headers.origin, req.headers.referer, config.allowedOrigins);

  const writeRecord: WriteRecord =
    deps.writeRecord ??
    (async (topic, key, value) => {
      if (!producer || !producerUp) throw new HttpError(503, 'unavailable', 'not connected to Kafka yet; try again shortly');
      await producer.send({ topic, acks: -1, messages: [{ key, value: JSON.stringify(value), headers: { 'pitwall.source': 'console' } }] });
    });

  const audit = createAuditTrail({ topic: config.consoleTopics.audit, writeRecord, now, log, counters });

  const applyRevocation = (r: RevocationRecord): void => {
    revocations.apply(r);
    live.endRevoked((s) => revocations.isRevoked(s, now()));
  };
  const publishRevocation = async (r: RevocationRecord): Promise<void> => {
    applyRevocation(r);
    await writeRecord(config.consoleTopics.sessions, revocationKey(r), r);
    log.info('sessions revoked', { ...r });
  };

  // Password checks are scrypt runs on the thread pool: a few at a time, a bounded queue.
  let verifying = 0;
  const verifyQueue: (() => void)[] = [];
  const withVerifySlot = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (verifying < VERIFY_CONCURRENCY) verifying++;
    else if (verifyQueue.length >= VERIFY_QUEUE) throw new HttpError(503, 'busy', 'too many sign-ins at once; try again shortly');
    else await new Promise<void>((r) => verifyQueue.push(r));
    try {
      return await fn();
    } finally {
      const next = verifyQueue.shift();
      if (next) next();
      else verifying--;
    }
  };

  /** Only a local path: never `//host` or a full URL, so sign-in cannot redirect elsewhere. */
  const safeNext = (next: unknown): string => (typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) && !next.startsWith('/login') ? next : '/');

  const handleLogin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const wantsJson = (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');
    const fail = (status: number, code: string, message: string, next: string, headers: Record<string, string> = {}): void => {
      if (wantsJson) json(res, status, { error: code, message }, headers);
      else redirect(res, `/login?error=${code}${next !== '/' ? `&next=${encodeURIComponent(next)}` : ''}`, headers);
    };
    if (!originOk(req)) {
      counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
      return json(res, 403, { error: 'bad_origin', message: 'the Origin header must be an allowed origin of this console' });
    }
    const body = await formOrJson(req);
    const next = safeNext(body.next);
    const client = clientOf(req);
    const user = typeof body.user === 'string' ? body.user.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const typed = clip(user, 64) ?? '';
    const limitKey = user.slice(0, 128);
    const limit = limiter.check(client.address, limitKey);
    if (!limit.allowed) {
      counters.inc(METRICS.signInsRefused, 1, 'rate-limited');
      log.warn('sign-in rate-limited', { user: typed, client: client.address, scope: limit.scope });
      if (limit.first) await audit.quietly({ user: typed, role: null, action: 'sign-in', outcome: 'rate-limited', client, session: null });
      return fail(429, 'rate_limited', 'too many failed sign-ins; wait a minute', next, { 'retry-after': String(Math.ceil(limit.retryAfterMs / 1000)) });
    }
    let entry;
    try {
      entry = await withVerifySlot(() => verifyPassword(config.users, user, password));
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, err.code, err.message, next, { 'retry-after': '2' });
      throw err;
    }
    if (!entry) {
      limiter.failed(client.address, limitKey);
      counters.inc(METRICS.signInsRefused, 1, 'bad-credentials');
      log.warn('sign-in refused', { user: typed, client: client.address });
      await audit.quietly({ user: typed, role: null, action: 'sign-in', outcome: 'bad-credentials', client, session: null });
      return fail(401, 'bad_credentials', 'unknown user or wrong password', next);
    }
    limiter.succeeded(client.address, limitKey);
    const session = newSession(entry.name, now(), config.sessionTtlMs);
    try {
      // No record, no session.
      await audit.record({ user: entry.name, role: entry.role, action: 'sign-in', outcome: 'ok', client, session: session.sid });
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, 'unavailable', err.message, next, { 'retry-after': '5' });
      throw err;
    }
    const cookie = sessionCookie(signSession(session, secret), { maxAgeS: Math.floor(config.sessionTtlMs / 1000), secure: secureFor(req) });
    counters.inc(METRICS.signIns);
    log.info('signed in', { user: entry.name, role: entry.role, client: client.address });
    if (wantsJson) json(res, 200, { user: entry.name, role: entry.role }, { 'set-cookie': cookie });
    else redirect(res, next, { 'set-cookie': cookie });
  };

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
    const principal = principalOf(req);
    const session = principal?.session ?? null;
    if (p === '/login') {
      if (method === 'POST') return handleLogin(req, res);
      if (!isRead) throw new HttpError(405, 'method_not_allowed', 'GET or POST');
      if (session) return redirect(res, safeNext(url.searchParams.get('next')));
      files.serve(req, res, '/static/login.html', { 'cache-control': 'no-store' });
      return;
    }
    if (p === '/logout') {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'sign out with POST');
      if (!originOk(req)) {
        counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
        return json(res, 403, { error: 'bad_origin', message: 'the Origin header must be an allowed origin of this console' });
      }
      if (principal) {
        const { session: s, role } = principal;
        // Revoked here at once, and for every replica (and restart) once the record is in Kafka.
        await publishRevocation({ type: 'session', sid: s.sid, user: s.user, exp: s.exp, at: now(), by: s.user });
        await audit.quietly({ user: s.user, role, action: 'sign-out', outcome: 'ok', client: clientOf(req), session: s.sid });
        log.info('signed out', { user: s.user });
      }
      return redirect(res, '/login?signed_out=1', { 'set-cookie': clearedSessionCookie(secureFor(req)) });
    }

    const isApi = p === '/api' || p.startsWith('/api/');
    if (!principal || !session) {
      counters.inc(METRICS.requestsRefused, 1, 'unauthenticated');
      if (isApi || !isRead) return json(res, 401, { error: 'unauthenticated', message: 'sign in first (POST /login)' });
      return redirect(res, `/login${p === '/' ? '' : `?next=${encodeURIComponent(p + url.search)}`}`);
    }
    if (!isRead && !originOk(req)) {
      counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
      return json(res, 403, { error: 'bad_origin', message: 'cross-origin or Origin-less writes are refused' });
    }

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
        counters.inc(METRICS.requestsRefused, 1, 'forbidden');
        await audit.quietly({ user: session.user, role: principal.role, action, outcome: 'forbidden', client: clientOf(req), session: session.sid, ...subject });
        return json(res, 403, { error: 'forbidden', message: `the ${principal.role} role may not ${action} incidents (operator or admin only)` });
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
      await audit.record({ user: session.user, role: principal.role, action, outcome: 'ok', client: clientOf(req), session: session.sid, ...subject, command_id: commandId, note });
      return json(res, status, out);
    }
    if (method === 'POST' && seg[0] === 'sessions' && seg[1] === 'revoke' && seg.length === 2) {
      const body = await formOrJson(req);
      if (body.user !== undefined && typeof body.user !== 'string') throw new HttpError(400, 'bad_request', 'user must be a string');
      const target = typeof body.user === 'string' && body.user.trim() !== '' ? body.user.trim() : session.user;
      const client = clientOf(req);
      if (target !== session.user && !can(principal.role, 'revokeOthers')) {
        counters.inc(METRICS.requestsRefused, 1, 'forbidden');
        await audit.quietly({ user: session.user, role: principal.role, action: 'revoke-sessions', outcome: 'forbidden', client, session: session.sid, target_user: clip(target, 64) ?? '' });
        return json(res, 403, { error: 'forbidden', message: `the ${principal.role} role may only revoke its own sessions (admin for others)` });
      }
      if (!config.users.has(target)) throw new HttpError(404, 'not_found', `no user ${clip(target, 64)}`);
      const before = now();
      await publishRevocation({ type: 'user', user: target, before, at: before, by: session.user });
      await audit.record({ user: session.user, role: principal.role, action: 'revoke-sessions', outcome: 'ok', client, session: session.sid, target_user: target });
      const self = target === session.user;
      return json(res, 200, { user: target, revoked_before: before }, self ? { 'set-cookie': clearedSessionCookie(secureFor(req)) } : {});
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
      sessionsReader = await startRevocationReader(kafka, { topic: config.consoleTopics.sessions, groupIdPrefix: config.groupIdPrefix, log, apply: applyRevocation });
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
