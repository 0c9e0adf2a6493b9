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
 * Routes (everything but /login, /static/, /vendor/ and the probes needs a session):
 *   GET  /login, POST /login, POST /logout
 *   GET  /, /vehicles/<id>                       the app (one page, routed in the browser)
 *   GET  /api/me | /api/incidents | /api/incidents/<id> | /api/fleet | /api/vehicles/<id>
 *   GET  /api/vehicles/<id>/telemetry?incident=<id> (or &from=&to= epoch ms)
 *   GET  /api/stream                             SSE: `snapshot`, then `incident` and `vehicles`
 *   POST /api/incidents/<id>/ack | /resolve      JSON {note?}; Origin must be this host
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import {
  createCounters,
  provisionTopics,
  runFromPositions,
  SENSORS,
  startTopicReader,
  type AvroCodec,
  type IncidentAction,
  type IncidentCommandRecord,
  type IncidentRecord,
  type Logger,
  type ScoreRecord,
  type SeekTarget,
  type Service,
  type TelemetryRecord,
  type TopicReader,
} from '@pitwall/common';
import { METRICS } from './metrics.js';
import {
  SESSION_COOKIE,
  checkPassword,
  clearedSessionCookie,
  createRevocations,
  newSession,
  originAllowed,
  parseCookies,
  sessionCookie,
  signSession,
  verifySession,
  type Session,
} from './session.js';
import { createEventLog, formatSse, sseComment } from './sse.js';
import { createFleetView, createIncidentStore, isOpen, type VehicleSummary } from './state.js';
import { isFresh, loadDir, type StaticFile } from './static.js';
import { createTelemetryReader, type TelemetrySeries } from './telemetry.js';

export interface ConsoleSettings {
  service: string;
  port: number;
  host?: string;
  users: ReadonlyMap<string, string>;
  /** HMAC key of session cookies; random per start when undefined. */
  sessionSecret: string | undefined;
  sessionTtlMs: number;
  cookieSecure: boolean;
  groupIdPrefix: string;
  partitions: number;
  scoresLookbackMs: number;
  topics: { incidents: string; scores: string; incidentCommands: string; telemetry: string };
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
}

export interface Console extends Service {
  /** The HTTP port actually bound (useful with port 0). */
  port(): number;
  /** The request handler, usable without start() for routes that need no Kafka (tests). */
  readonly handler: http.RequestListener;
}

const LIST_LIMIT = 1000;
const BODY_LIMIT = 16 * 1024;
const NOTE_LIMIT = 500;
const SIGN_IN_WINDOW_MS = 60_000;
const SIGN_IN_MAX_FAILURES = 10;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function defaultPublicDir(): string {
  return fileURLToPath(new URL('../../public/', import.meta.url));
}

function uplotDir(): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  // uPlot sets element styles from script (CSSOM), which style-src does not restrict.
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
});

export function createConsole(deps: ConsoleDeps): Console {
  const { config, log, kafka } = deps;
  const now = deps.now ?? Date.now;
  const counters = createCounters(Object.values(METRICS));
  const secret = config.sessionSecret ?? randomBytes(32);
  const revocations = createRevocations();
  const incidents = createIncidentStore();
  const fleet = createFleetView(incidents);
  const events = createEventLog<unknown>(2000);
  const streams = new Set<ServerResponse>();
  const dirtyVehicles = new Set<string>();
  const failures = new Map<string, number[]>();
  const closedRetentionMs = config.closedRetentionMs ?? 86_400_000;
  const telemetryCache = new Map<string, { at: number; value: Promise<TelemetrySeries> }>();
  const telemetry = createTelemetryReader(kafka, deps.codecs.telemetry, log, {
    topic: config.topics.telemetry,
    groupIdPrefix: config.groupIdPrefix,
    maxScan: config.telemetry.maxScan,
    maxPoints: config.telemetry.maxPoints,
  });
  let files = new Map<string, StaticFile>();
  let server: http.Server | undefined;
  let producer: Producer | undefined;
  let incidentsReader: TopicReader | undefined;
  let scoresConsumer: Consumer | undefined;
  let caughtUp = false;
  let markCaughtUp!: () => void;
  // Streams opened during the rebuild wait for it: their snapshot must hold every incident.
  const whenCaughtUp = new Promise<void>((r) => (markCaughtUp = r));
  let producerUp = false;
  let scoresUp = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let flusher: NodeJS.Timeout | undefined;

  // ------------------------------------------------------------------ live stream

  const broadcast = (event: string, data: unknown): void => {
    if (!caughtUp) return; // snapshots taken after the rebuild include it
    const e = events.append(event, data);
    const text = formatSse(e);
    for (const res of streams) res.write(text);
  };

  const flushVehicles = (): void => {
    if (dirtyVehicles.size === 0 || !caughtUp) return;
    const changed: VehicleSummary[] = [...dirtyVehicles].map((v) => fleet.summary(v));
    dirtyVehicles.clear();
    broadcast('vehicles', changed);
  };

  const snapshot = (user: string): Record<string, unknown> => ({
    user,
    server_time: now(),
    incidents: incidents.list(now(), closedRetentionMs, LIST_LIMIT),
    vehicles: fleet.all(),
  });

  // ------------------------------------------------------------------ Kafka

  const onIncidentBatch = async (batch: { messages: { key: Buffer | null; value: Buffer | null; offset: string }[] }): Promise<void> => {
    for (const m of batch.messages) {
      counters.inc(METRICS.incidentsRead);
      if (m.value === null) {
        const gone = incidents.remove(m.key?.toString() ?? '');
        if (gone) {
          broadcast('removed', { incident_id: gone.incident_id, vehicle_id: gone.vehicle_id });
          dirtyVehicles.add(gone.vehicle_id);
        }
        continue;
      }
      let incident: IncidentRecord;
      try {
        incident = await deps.codecs.incidents.decode(m.value);
      } catch (err) {
        counters.inc(METRICS.undecodable, 1, 'incident');
        log.warn('undecodable incident record skipped', { offset: m.offset, err });
        continue;
      }
      if (incidents.apply(incident)) {
        broadcast('incident', incident);
        dirtyVehicles.add(incident.vehicle_id);
      }
    }
  };

  const startScores = async (): Promise<void> => {
    const consumer = kafka.consumer({ groupId: `${config.groupIdPrefix}-scores-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
    scoresConsumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) scoresUp = false;
      log.warn('scores consumer crashed', { err: payload.error, restart: payload.restart });
    });
    const admin = kafka.admin();
    await admin.connect();
    let start: { partition: number; offset: string }[];
    try {
      start = await admin.fetchTopicOffsetsByTimestamp(config.topics.scores, now() - config.scoresLookbackMs);
    } finally {
      await admin.disconnect();
    }
    await consumer.connect();
    await consumer.subscribe({ topic: config.topics.scores, fromBeginning: false });
    // Next offset per partition: the lookback start, then past what was read (so a restart resumes).
    const next = new Map(start.map(({ partition, offset }) => [partition, offset]));
    const positions = (): SeekTarget[] => [...next].map(([partition, offset]) => ({ topic: config.topics.scores, partition, offset }));
    await runFromPositions(consumer, positions, {
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.value) continue;
          counters.inc(METRICS.scoresRead);
          try {
            const score = await deps.codecs.scores.decode(m.value);
            if (fleet.applyScore(score)) dirtyVehicles.add(score.vehicle_id);
          } catch (err) {
            counters.inc(METRICS.undecodable, 1, 'score');
            log.debug('undecodable score record skipped', { offset: m.offset, err });
          }
        }
        const last = batch.messages.at(-1);
        if (last) next.set(batch.partition, (BigInt(last.offset) + 1n).toString());
      },
    });
    scoresUp = true;
  };

  const writeCommand = async (incidentId: string, action: IncidentAction, operator: string, note: string | null): Promise<{ status: number; body: unknown }> => {
    const incident = incidents.get(incidentId);
    if (!incident) throw new HttpError(404, 'not_found', `no incident ${incidentId}`);
    if (action === 'ACKNOWLEDGE' && incident.status !== 'OPEN') {
      throw new HttpError(409, 'conflict', `incident ${incidentId} is ${incident.status}; only an OPEN incident can be acknowledged`);
    }
    if (action === 'RESOLVE' && !isOpen(incident)) throw new HttpError(409, 'conflict', `incident ${incidentId} is already ${incident.status}`);
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

  const readTelemetry = (vehicleId: string, from: number, to: number): Promise<TelemetrySeries> => {
    const key = `${vehicleId}\u0000${from}\u0000${to}`;
    const t = now();
    for (const [k, v] of telemetryCache) if (t - v.at > 15_000) telemetryCache.delete(k);
    const cached = telemetryCache.get(key);
    if (cached) return cached.value;
    counters.inc(METRICS.telemetryReads);
    const value = telemetry.read({ vehicleId, from, to });
    telemetryCache.set(key, { at: t, value });
    value.catch(() => telemetryCache.delete(key));
    return value;
  };

  // ------------------------------------------------------------------ HTTP

  const sessionOf = (req: IncomingMessage): Session | null => {
    const s = verifySession(parseCookies(req.headers.cookie)[SESSION_COOKIE], secret, now());
    return s && !revocations.isRevoked(s, now()) ? s : null;
  };

  const send = (res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string | string[]> = {}): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, ...headers });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void =>
    send(res, status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  const redirect = (res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void =>
    send(res, 303, '', { location, 'cache-control': 'no-store', ...headers });

  const serveFile = (req: IncomingMessage, res: ServerResponse, key: string, extra: Record<string, string> = {}): boolean => {
    const f = files.get(key);
    if (!f) return false;
    const headers = { 'content-type': f.contentType, 'cache-control': f.cacheControl, etag: f.etag, ...extra };
    if (isFresh(req.headers['if-none-match'], f.etag)) send(res, 304, '', headers);
    else send(res, 200, req.method === 'HEAD' ? '' : f.body, headers);
    return true;
  };

  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > BODY_LIMIT) throw new HttpError(413, 'too_large', `request body over ${BODY_LIMIT} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  };

  const formOrJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const text = await readBody(req);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (text.trim() === '') return {};
    if (type === 'application/json') {
      try {
        const v: unknown = JSON.parse(text);
        if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
      } catch {
        // reported below
      }
      throw new HttpError(400, 'bad_request', 'body must be a JSON object');
    }
    if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
    throw new HttpError(415, 'unsupported_media_type', 'send application/json or application/x-www-form-urlencoded');
  };

  const tooManyFailures = (ip: string): boolean => {
    const t = now();
    const recent = (failures.get(ip) ?? []).filter((x) => t - x < SIGN_IN_WINDOW_MS);
    if (recent.length === 0) failures.delete(ip);
    else failures.set(ip, recent);
    return recent.length >= SIGN_IN_MAX_FAILURES;
  };

  /** Only a local path: never `//host` or a full URL, so sign-in cannot redirect elsewhere. */
  const safeNext = (next: unknown): string => (typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) && !next.startsWith('/login') ? next : '/');

  const handleLogin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const wantsJson = (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');
    const fail = (status: number, code: string, message: string, next: string): void => {
      if (wantsJson) json(res, status, { error: code, message });
      else redirect(res, `/login?error=${code}${next !== '/' ? `&next=${encodeURIComponent(next)}` : ''}`);
    };
    if (!originAllowed(req.headers.origin, req.headers.host)) {
      counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
      return json(res, 403, { error: 'bad_origin', message: 'the Origin header must be this console' });
    }
    const body = await formOrJson(req);
    const next = safeNext(body.next);
    const ip = req.socket.remoteAddress ?? '?';
    if (tooManyFailures(ip)) {
      counters.inc(METRICS.signInsRefused, 1, 'rate-limited');
      return fail(429, 'rate_limited', 'too many failed sign-ins; wait a minute', next);
    }
    const user = typeof body.user === 'string' ? body.user.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    if (!checkPassword(config.users, user, password)) {
      failures.set(ip, [...(failures.get(ip) ?? []), now()]);
      counters.inc(METRICS.signInsRefused, 1, 'bad-credentials');
      log.warn('sign-in refused', { user: user.slice(0, 64), ip });
      return fail(401, 'bad_credentials', 'unknown user or wrong password', next);
    }
    failures.delete(ip);
    const session = newSession(user, now(), config.sessionTtlMs);
    const cookie = sessionCookie(signSession(session, secret), { maxAgeS: Math.floor(config.sessionTtlMs / 1000), secure: config.cookieSecure });
    counters.inc(METRICS.signIns);
    log.info('signed in', { user, ip });
    if (wantsJson) json(res, 200, { user }, { 'set-cookie': cookie });
    else redirect(res, next, { 'set-cookie': cookie });
  };

  const handleStream = async (req: IncomingMessage, res: ServerResponse, session: Session, url: URL): Promise<void> => {
    if (!caughtUp) {
      let gone = false;
      req.once('close', () => (gone = true));
      await whenCaughtUp;
      if (gone) return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(formatSse({ event: 'hello', data: { user: session.user }, retry: 3000 }));
    counters.inc(METRICS.sseConnections);
    const lastId = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('lastEventId') ?? undefined;
    const missed = events.since(lastId);
    if (missed) for (const e of missed) res.write(formatSse(e));
    else res.write(formatSse({ id: events.lastId(), event: 'snapshot', data: snapshot(session.user) }));
    streams.add(res);
    // A session that expires while connected is cut off; the browser's reconnect then gets a 401.
    const expiry = setTimeout(() => res.end(), Math.max(0, session.exp - now()));
    req.on('close', () => {
      clearTimeout(expiry);
      streams.delete(res);
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const p = url.pathname;
    const method = req.method ?? 'GET';
    const isRead = method === 'GET' || method === 'HEAD';

    if (p === '/healthz') return json(res, 200, { status: 'ok' });
    if (p === '/readyz') {
      const failing = Object.entries(readiness()).filter(([, ok]) => !ok).map(([n]) => n);
      return json(res, failing.length ? 503 : 200, { status: failing.length ? 'not-ready' : 'ready', failing });
    }
    if (isRead && (p.startsWith('/static/') || p.startsWith('/vendor/') || p === '/favicon.svg')) {
      if (serveFile(req, res, p === '/favicon.svg' ? '/static/favicon.svg' : p)) return;
      return send(res, 404, 'not found', { 'content-type': 'text/plain; charset=utf-8' });
    }
    const session = sessionOf(req);
    if (p === '/login') {
      if (method === 'POST') return handleLogin(req, res);
      if (!isRead) throw new HttpError(405, 'method_not_allowed', 'GET or POST');
      if (session) return redirect(res, safeNext(url.searchParams.get('next')));
      serveFile(req, res, '/static/login.html', { 'cache-control': 'no-store' });
      return;
    }
    if (p === '/logout') {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'sign out with POST');
      if (!originAllowed(req.headers.origin, req.headers.host)) {
        counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
        return json(res, 403, { error: 'bad_origin', message: 'the Origin header must be this console' });
      }
      if (session) {
        revocations.revoke(session);
        log.info('signed out', { user: session.user });
      }
      return redirect(res, '/login?signed_out=1', { 'set-cookie': clearedSessionCookie(config.cookieSecure) });
    }

    const isApi = p === '/api' || p.startsWith('/api/');
    if (!session) {
      counters.inc(METRICS.requestsRefused, 1, 'unauthenticated');
      if (isApi || !isRead) return json(res, 401, { error: 'unauthenticated', message: 'sign in first (POST /login)' });
      return redirect(res, `/login${p === '/' ? '' : `?next=${encodeURIComponent(p + url.search)}`}`);
    }
    if (!isRead && !originAllowed(req.headers.origin, req.headers.host)) {
      counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
      return json(res, 403, { error: 'bad_origin', message: 'cross-origin or Origin-less writes are refused' });
    }

    if (!isApi) {
      if (isRead && (p === '/' || /^\/vehicles\/[^/]+$/.test(p))) {
        serveFile(req, res, '/static/app.html', { 'cache-control': 'no-store' });
        return;
      }
      return send(res, 404, 'not found', { 'content-type': 'text/plain; charset=utf-8' });
    }

    const seg = p.split('/').slice(2).map((s) => decodeURIComponent(s));
    if (isRead) {
      if (seg[0] === 'me' && seg.length === 1) return json(res, 200, { user: session.user, expires_at: session.exp });
      if (seg[0] === 'stream' && seg.length === 1) return handleStream(req, res, session, url);
      if (seg[0] === 'incidents' && seg.length === 1) return json(res, 200, { incidents: incidents.list(now(), closedRetentionMs, LIST_LIMIT) });
      if (seg[0] === 'incidents' && seg.length === 2) {
        const i = incidents.get(seg[1]!);
        if (!i) throw new HttpError(404, 'not_found', `no incident ${seg[1]}`);
        return json(res, 200, { incident: i });
      }
      if (seg[0] === 'fleet' && seg.length === 1) return json(res, 200, { counts: fleet.counts(), vehicles: fleet.all() });
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
        const series = await readTelemetry(vehicleId, from, to);
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
      const body = await formOrJson(req);
      let note: string | null = null;
      if (body.note !== undefined && body.note !== null) {
        if (typeof body.note !== 'string') throw new HttpError(400, 'bad_request', 'note must be a string');
        note = body.note.trim() === '' ? null : body.note.trim();
        if (note !== null && note.length > NOTE_LIMIT) throw new HttpError(400, 'bad_request', `note is longer than ${NOTE_LIMIT} characters`);
      }
      const { status, body: out } = await writeCommand(seg[1]!, seg[2] === 'ack' ? 'ACKNOWLEDGE' : 'RESOLVE', session.user, note);
      return json(res, status, out);
    }
    throw new HttpError(isRead ? 404 : 405, isRead ? 'not_found' : 'method_not_allowed', `no route ${method} ${p}`);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : undefined;
      if (!e) log.error('request failed', { method: req.method, url: req.url, err });
      if (res.headersSent) return void res.end();
      json(res, e?.status ?? 500, { error: e?.code ?? 'internal', message: e?.message ?? 'internal error; see the console log' });
    });
  };

  const readiness = (): Record<string, boolean> => ({ incidents: caughtUp, producer: producerUp, scores: scoresUp, http: Boolean(server?.listening) });

  return {
    async start() {
      files = new Map([
        ...(await loadDir(config.publicDir ?? defaultPublicDir(), '/static/', 'no-cache')),
        ...(await loadDir(uplotDir(), '/vendor/', 'public, max-age=86400', ['uPlot.esm.js', 'uPlot.min.css'])),
      ]);
      await provisionTopics(
        kafka,
        [
          { topic: config.topics.incidents, configEntries: { 'cleanup.policy': 'compact' } },
          { topic: config.topics.incidentCommands },
          { topic: config.topics.scores },
        ],
        { partitions: config.partitions },
      );
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
      await startScores();
      const startedAt = now();
      incidentsReader = await startTopicReader(kafka, {
        topic: config.topics.incidents,
        groupIdPrefix: `${config.groupIdPrefix}-incidents`,
        follow: true,
        log,
        onBatch: (batch) => onIncidentBatch(batch),
      });
      await incidentsReader.caughtUp;
      caughtUp = true;
      markCaughtUp();
      flusher = setInterval(flushVehicles, 1000);
      heartbeat = setInterval(() => {
        const text = sseComment(`heartbeat ${now()}`);
        for (const res of streams) res.write(text);
      }, config.heartbeatMs ?? 15_000);
      log.info('console started', { port: (server.address() as AddressInfo).port, incidents: incidents.size(), rebuildMs: now() - startedAt });
    },
    async close() {
      caughtUp = false;
      if (heartbeat) clearInterval(heartbeat);
      if (flusher) clearInterval(flusher);
      for (const res of streams) res.end();
      streams.clear();
      const closed = new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server?.closeAllConnections();
      await closed;
      await incidentsReader?.stop();
      await scoresConsumer?.disconnect();
      await producer?.disconnect();
      producerUp = false;
    },
    ready: () => Object.values(readiness()).every(Boolean),
    stats: () => ({ ...counters.snapshot(), incidents: incidents.size(), streams: streams.size }),
    port: () => (server?.address() as AddressInfo | null)?.port ?? config.port,
    handler,
  };
}
