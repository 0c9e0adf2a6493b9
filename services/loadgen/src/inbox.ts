/**
 * The cars' side of dispatch for one connection, with the simulator's message formats
 * (parseAlert, receiptFor, parseMaintenance): every car subscribes its own
 * `vehicles/<id>/alerts` and `vehicles/<id>/maintenance` (a topic per car, never a wildcard: a
 * gateway's cars share no topic level, and a per-car ACL can later allow exactly these), and
 * answers each first-seen alert (incident id + revision) with a receipt on
 * `vehicles/<id>/alerts/receipt`. The alert payload's opened_at is kept for the latency.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { carTopic, parseAlert, parseMaintenance, receiptFor } from '@pitwall/simulator';
import type { AlertEvent } from './messages.js';

/** Topics per SUBSCRIBE packet. */
const TOPICS_PER_SUBSCRIBE = 500;

export function subscriptionBatches(vehicleIds: readonly string[]): string[][] {
  const topics = vehicleIds.flatMap((id) => [`vehicles/${id}/alerts`, `vehicles/${id}/maintenance`]);
  const out: string[][] = [];
  for (let i = 0; i < topics.length; i += TOPICS_PER_SUBSCRIBE) out.push(topics.slice(i, i + TOPICS_PER_SUBSCRIBE));
  return out;
}

export interface InboxDeps {
  vehicleIds: readonly string[];
  sendReceipt(topic: string, payload: string): void;
  onAlert(e: AlertEvent): void;
  onDuplicate(): void;
  onMaintenance(): void;
  now?: () => number;
}

export interface Inbox {
  handle(topic: string, payload: Buffer, packet: IPublishPacket): void;
  /** Cars that hold a retained maintenance state (to clear it when the run ends). */
  withState(): string[];
}

function openedAt(payload: Buffer): { openedAt: number | null; area: string | null } {
  try {
    const body = JSON.parse(payload.toString('utf8')) as { opened_at?: unknown; area?: unknown };
    return { openedAt: Number.isSafeInteger(body.opened_at) ? (body.opened_at as number) : null, area: typeof body.area === 'string' ? body.area : null };
  } catch {
    return { openedAt: null, area: null };
  }
}

export function createInbox(deps: InboxDeps): Inbox {
  const now = deps.now ?? Date.now;
  const cars = new Set(deps.vehicleIds);
  const seen = new Set<string>();
  const withState = new Set<string>();
  return {
    handle(topic, payload, packet) {
      const receivedAt = now();
      const t = carTopic(topic);
      if (!t || !cars.has(t.vehicleId)) return;
      if (t.kind === 'maintenance') {
        if (parseMaintenance(payload)) {
          withState.add(t.vehicleId);
          deps.onMaintenance();
        }
        return;
      }
      let alert;
      try {
        alert = parseAlert(t.vehicleId, payload, packet.properties);
      } catch {
        return; // no incident id: nothing to confirm or count
      }
      const key = `${alert.incidentId}#${alert.revision ?? ''}`;
      if (seen.has(key)) return deps.onDuplicate();
      seen.add(key);
      const r = receiptFor(alert, receivedAt);
      deps.sendReceipt(r.topic, r.payload);
      deps.onAlert({ vehicleId: t.vehicleId, incidentId: alert.incidentId, revision: alert.revision, severity: alert.severity, ...openedAt(payload), receivedAt });
    },
    withState: () => [...withState],
  };
}
