/**
 * The cars' side of dispatch: every simulated car listens to its alerts and its retained
 * maintenance state, and confirms each alert with a receipt, as a real car's telematics unit would.
 *
 *   in   vehicles/{id}/alerts        QoS 1, MQTT 5: correlationData = incident id,
 *                                    userProperties { revision, severity }; JSON pitwall.alert.v2
 *   in   vehicles/{id}/maintenance   retained JSON pitwall.maintenance.v1 (status ok | attention)
 *   out  vehicles/{id}/alerts/receipt  QoS 1, JSON { incident_id, revision, received_at }
 *
 * Alerts are delivered at least once; a car deduplicates on incident_id + revision (a repeat is
 * counted, not logged and not confirmed again). Messages for vehicles outside this fleet are
 * ignored: with wildcard subscriptions the broker delivers every fleet's traffic.
 */
import type { IClientSubscribeOptions, IPublishPacket } from 'mqtt';
import type { Logger, Registry } from '@pitwall/common';
import { INBOX_COUNTERS, INBOX_METRICS as METRICS, createCounters } from './metrics.js';

export interface CarAlert {
  vehicleId: string;
  incidentId: string;
  revision: number | null;
  severity: string | null;
  component: string | null;
  action: string | null;
}

export interface ReceiptMessage {
  topic: string;
  payload: string;
}

const ALERT_TOPIC = /^vehicles\/([^/]+)\/alerts$/;
const MAINTENANCE_TOPIC = /^vehicles\/([^/]+)\/maintenance$/;

/** Which kind of car topic this is, and for which vehicle; undefined for anything else. */
export function carTopic(topic: string): { kind: 'alert' | 'maintenance'; vehicleId: string } | undefined {
  const a = ALERT_TOPIC.exec(topic);
  if (a) return { kind: 'alert', vehicleId: a[1]! };
  const m = MAINTENANCE_TOPIC.exec(topic);
  if (m) return { kind: 'maintenance', vehicleId: m[1]! };
  return undefined;
}

type Properties = IPublishPacket['properties'];

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const userProperty = (p: Properties, name: string): string | null => {
  const v = p?.userProperties?.[name];
  return str(Array.isArray(v) ? v[0] : v);
};

/**
 * Reads an alert: the incident id from correlationData (falling back to the payload), the rest
 * from the payload (falling back to the user properties). Throws a TypeError when there is no
 * incident id to confirm.
 */
export function parseAlert(vehicleId: string, payload: Buffer, properties: Properties): CarAlert {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // The properties alone can still identify the incident.
  }
  const correlation = properties?.correlationData;
  const incidentId = (correlation && correlation.length > 0 ? correlation.toString('utf8') : null) ?? str(body.incident_id);
  if (incidentId === null) throw new TypeError('alert without incident id (no correlationData, no incident_id in the payload)');
  const fromProperty = Number(userProperty(properties, 'revision') ?? NaN);
  const revision = Number.isSafeInteger(body.revision) ? (body.revision as number) : Number.isSafeInteger(fromProperty) ? fromProperty : null;
  return {
    vehicleId,
    incidentId,
    revision,
    severity: str(body.severity) ?? userProperty(properties, 'severity'),
    component: str(body.component),
    action: str(body.action),
  };
}

export function receiptFor(alert: CarAlert, receivedAt: number): ReceiptMessage {
  return {
    topic: `vehicles/${alert.vehicleId}/alerts/receipt`,
    payload: JSON.stringify({ incident_id: alert.incidentId, ...(alert.revision === null ? {} : { revision: alert.revision }), received_at: receivedAt }),
  };
}

/** Status and open-incident count of a maintenance state; undefined when it is not one. */
export function parseMaintenance(payload: Buffer): { status: string; open: number } | undefined {
  if (payload.length === 0) return undefined; // a cleared retained message
  try {
    const body = JSON.parse(payload.toString('utf8')) as { status?: unknown; open_incidents?: unknown };
    if (typeof body.status !== 'string') return undefined;
    return { status: body.status, open: Array.isArray(body.open_incidents) ? body.open_incidents.length : 0 };
  } catch {
    return undefined;
  }
}

/** Per-vehicle topics for small fleets; two wildcards (filtered here) beyond this many cars. */
export const MAX_EXACT_SUBSCRIPTION_CARS = 200;

export function inboxSubscriptions(vehicleIds: readonly string[]): string[] {
  if (vehicleIds.length > MAX_EXACT_SUBSCRIPTION_CARS) return ['vehicles/+/alerts', 'vehicles/+/maintenance'];
  return vehicleIds.flatMap((id) => [`vehicles/${id}/alerts`, `vehicles/${id}/maintenance`]);
}

/** The part of an mqtt.js MqttClient the inbox uses. */
export interface InboxClient {
  on(event: 'message', listener: (topic: string, payload: Buffer, packet: IPublishPacket) => void): unknown;
  off(event: 'message', listener: (topic: string, payload: Buffer, packet: IPublishPacket) => void): unknown;
  subscribeAsync(topics: string[], opts: IClientSubscribeOptions): Promise<unknown>;
  publish(topic: string, message: string, opts: { qos: 1 }, callback: (err?: Error) => void): unknown;
}

export interface CarInboxDeps {
  client: InboxClient;
  vehicleIds: readonly string[];
  log: Logger;
  /** Send receipts (SIM_RECEIPTS). Alerts are logged and counted either way. */
  receipts: boolean;
  now?: () => number;
  /** Called for each first-seen alert, after its receipt was handed to the client. */
  onAlert?: (alert: CarAlert) => void;
  /** Where the counters are exported (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export interface CarInbox {
  start(): Promise<void>;
  stop(): void;
  stats(): Record<string, number>;
  /** Last maintenance status seen per vehicle ('ok' | 'attention'). */
  maintenance(vehicleId: string): string | undefined;
}

export function createCarInbox(deps: CarInboxDeps): CarInbox {
  const { client, log } = deps;
  const now = deps.now ?? Date.now;
  const fleet = new Set(deps.vehicleIds);
  const counters = createCounters(INBOX_COUNTERS, deps.metrics);
  const seen = new Set<string>();
  const states = new Map<string, { status: string; open: number }>();

  const remember = (key: string): boolean => {
    if (seen.has(key)) return false;
    seen.add(key);
    if (seen.size > 10_000) seen.delete(seen.values().next().value as string);
    return true;
  };

  const onAlert = (vehicleId: string, payload: Buffer, packet: IPublishPacket): void => {
    let alert: CarAlert;
    try {
      alert = parseAlert(vehicleId, payload, packet.properties);
    } catch (err) {
      log.warn('unreadable alert', { vehicleId, err, bytes: payload.length });
      return;
    }
    if (!remember(`${alert.incidentId}#${alert.revision ?? ''}`)) {
      counters.inc(METRICS.alertDuplicates);
      return;
    }
    counters.inc(METRICS.alertsReceived);
    log.info('alert received', {
      vehicleId,
      incidentId: alert.incidentId,
      severity: alert.severity,
      component: alert.component,
      action: alert.action,
      revision: alert.revision,
    });
    if (deps.receipts) {
      const r = receiptFor(alert, now());
      try {
        client.publish(r.topic, r.payload, { qos: 1 }, (err) => {
          if (err) {
            counters.inc(METRICS.receiptsFailed);
            log.warn('receipt not sent', { vehicleId, incidentId: alert.incidentId, err });
          } else counters.inc(METRICS.receiptsSent);
        });
      } catch (err) {
        counters.inc(METRICS.receiptsFailed);
        log.warn('receipt not sent', { vehicleId, incidentId: alert.incidentId, err });
      }
    }
    deps.onAlert?.(alert);
  };

  const onMaintenance = (vehicleId: string, payload: Buffer): void => {
    const state = parseMaintenance(payload);
    if (!state) return;
    counters.inc(METRICS.maintenanceStates);
    const prev = states.get(vehicleId);
    states.set(vehicleId, state);
    if (prev?.status !== state.status || prev.open !== state.open) log.info('maintenance state', { vehicleId, status: state.status, openIncidents: state.open });
  };

  const listener = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
    const t = carTopic(topic);
    if (!t || !fleet.has(t.vehicleId)) return;
    if (t.kind === 'alert') onAlert(t.vehicleId, payload, packet);
    else onMaintenance(t.vehicleId, payload);
  };

  return {
    async start() {
      client.on('message', listener);
      const topics = inboxSubscriptions(deps.vehicleIds);
      await client.subscribeAsync(topics, { qos: 1 });
      log.info('cars listening for alerts', { cars: fleet.size, subscriptions: topics.length, receipts: deps.receipts });
    },
    stop() {
      client.off('message', listener);
    },
    stats: () => counters.snapshot(),
    maintenance: (vehicleId) => states.get(vehicleId)?.status,
  };
}
