/**
 * The live view, GET /api/stream (SSE): `hello`, then a `snapshot` of every listed incident and
 * vehicle (or, on a reconnect with Last-Event-ID, the events missed), then `incident`, `removed`
 * and `vehicles` events as the views change. Vehicle summaries are batched: changed vehicles are
 * sent once a second. A comment line every `heartbeatMs` keeps proxies from closing idle streams.
 *
 * Nothing is broadcast until the incidents are rebuilt (`start`): snapshots taken after that hold
 * it all, and streams opened before wait for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Counters, IncidentRecord } from '@pitwall/common';
import { SECURITY_HEADERS } from './http.js';
import { METRICS } from './metrics.js';
import type { Role } from './passwords.js';
import type { Session } from './session.js';
import { createEventLog, formatSse, sseComment } from './sse.js';
import type { FleetView, VehicleSummary } from './state.js';

const EVENTS_KEPT = 2000;
const FLUSH_MS = 1000;

export interface LiveDeps {
  now: () => number;
  counters: Counters;
  fleet: Pick<FleetView, 'summary' | 'all'>;
  /** The incidents a snapshot lists. */
  listIncidents(): IncidentRecord[];
  /** Default 15 s. */
  heartbeatMs?: number;
}

/** A signed-in GET /api/stream. */
export interface StreamRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  principal: { session: Session; role: Role };
}

export type Live = ReturnType<typeof createLive>;

export function createLive(deps: LiveDeps) {
  const { now, counters, fleet } = deps;
  const events = createEventLog<unknown>(EVENTS_KEPT);
  /** Open streams with the session each was opened with: revoking it ends the stream. */
  const streams = new Map<ServerResponse, Session>();
  const dirtyVehicles = new Set<string>();
  let live = false;
  let markLive!: () => void;
  const whenLive = new Promise<void>((r) => (markLive = r));
  let heartbeat: NodeJS.Timeout | undefined;
  let flusher: NodeJS.Timeout | undefined;

  const broadcast = (event: string, data: unknown): void => {
    if (!live) return; // snapshots taken after the rebuild include it
    const text = formatSse(events.append(event, data));
    for (const res of streams.keys()) res.write(text);
  };

  const flushVehicles = (): void => {
    if (dirtyVehicles.size === 0 || !live) return;
    const changed: VehicleSummary[] = [...dirtyVehicles].map((v) => fleet.summary(v));
    dirtyVehicles.clear();
    broadcast('vehicles', changed);
  };

  const snapshot = (user: string): Record<string, unknown> => ({ user, server_time: now(), incidents: deps.listIncidents(), vehicles: fleet.all() });

  return {
    broadcast,
    /** The vehicle's summary goes out with the next flush. */
    vehicleChanged(vehicleId: string): void {
      dirtyVehicles.add(vehicleId);
    },

    async stream({ req, res, url, principal }: StreamRequest): Promise<void> {
      const { session, role } = principal;
      if (!live) {
        let gone = false;
        req.once('close', () => (gone = true));
        await whenLive;
        if (gone) return;
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(formatSse({ event: 'hello', data: { user: session.user, role }, retry: 3000 }));
      counters.inc(METRICS.sseConnections);
      const lastId = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('lastEventId') ?? undefined;
      const missed = events.since(lastId);
      if (missed) for (const e of missed) res.write(formatSse(e));
      else res.write(formatSse({ id: events.lastId(), event: 'snapshot', data: snapshot(session.user) }));
      streams.set(res, session);
      // A session that expires (or is revoked) while connected is cut off; the browser's reconnect then gets a 401.
      const expiry = setTimeout(() => res.end(), Math.max(0, session.exp - now()));
      req.on('close', () => {
        clearTimeout(expiry);
        streams.delete(res);
      });
    },

    /** Ends the streams of sessions that are now revoked. */
    endRevoked(isRevoked: (s: Session) => boolean): void {
      for (const [res, s] of streams) if (isRevoked(s)) res.end();
    },

    /** The incidents are rebuilt: snapshots are complete, changes are broadcast. */
    start(): void {
      live = true;
      markLive();
      flusher = setInterval(flushVehicles, FLUSH_MS);
      heartbeat = setInterval(() => {
        const text = sseComment(`heartbeat ${now()}`);
        for (const res of streams.keys()) res.write(text);
      }, deps.heartbeatMs ?? 15_000);
    },
    started: (): boolean => live,
    close(): void {
      live = false;
      if (heartbeat) clearInterval(heartbeat);
      if (flusher) clearInterval(flusher);
      for (const res of streams.keys()) res.end();
      streams.clear();
    },
    size: (): number => streams.size,
  };
}
