// @ts-check
// What the views read and the actions they take: the incidents and vehicles the live stream
// delivered, the signed-in user's role, and the acknowledge/resolve commands in flight.
import { toast } from './dom.js';

/**
 * @typedef {Record<string, any>} Incident an incident as the stream sends it (docs/console.md)
 * @typedef {{ action: string, revision: number, since: number, commandId?: string }} Pending
 * @typedef {(kind: string, detail?: Record<string, unknown>) => void} Listener
 */

/**
 * Everything the views read. `pending`: actions sent and not yet seen in a new incident revision.
 * `role`: viewer, operator or admin (null until the stream says); the server enforces it, the
 * views only hide what the role cannot do.
 * @type {{ user: string | null, role: string | null, ready: boolean, incidents: Map<string, Incident>, vehicles: Map<string, Record<string, any>>, pending: Map<string, Pending>, listeners: Set<Listener>, changed: (kind: string, detail?: Record<string, unknown>) => void }}
 */
export const store = {
  user: null,
  role: null,
  ready: false,
  incidents: new Map(),
  vehicles: new Map(),
  pending: new Map(),
  listeners: new Set(),
  changed(kind, detail) {
    for (const fn of this.listeners) fn(kind, detail);
  },
};

/**
 * A new revision of an incident from the stream: kept if newer than what the store has; a pending
 * action it completes is cleared with a toast.
 * @param {Incident} incident
 */
export function applyIncident(incident) {
  const before = store.incidents.get(incident.incident_id);
  if (before && before.revision >= incident.revision) return;
  store.incidents.set(incident.incident_id, incident);
  const p = store.pending.get(incident.incident_id);
  if (p && incident.revision > p.revision) {
    const done = p.action === 'ACKNOWLEDGE' ? incident.status !== 'OPEN' : incident.status === 'RESOLVED' || incident.status === 'CLEARED';
    if (done) {
      store.pending.delete(incident.incident_id);
      toast(`${incident.vehicle_id}: incident ${incident.status.toLowerCase()}${incident.acknowledged_by && p.action === 'ACKNOWLEDGE' ? ` by ${incident.acknowledged_by}` : ''}.`);
    }
  }
  // Significant: worth drawing the eye to (a new incident, or its status or severity changed).
  const significant = !before || before.status !== incident.status || before.severity !== incident.severity;
  store.changed('incident', { incident_id: incident.incident_id, isNew: !before, significant });
}

/** Whether the signed-in user's role may acknowledge and resolve (null: not known yet). */
export function canAct() {
  return store.role === null ? null : store.role === 'operator' || store.role === 'admin';
}

/**
 * Sends an acknowledge/resolve; the result shows up as a new incident revision on the stream.
 * @param {Incident} incident
 * @param {'ACKNOWLEDGE' | 'RESOLVE'} action
 * @param {string} [note]
 */
export async function sendAction(incident, action, note) {
  const path = action === 'ACKNOWLEDGE' ? 'ack' : 'resolve';
  const res = await fetch(`/api/incidents/${encodeURIComponent(incident.incident_id)}/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ note: note || null }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  store.pending.set(incident.incident_id, { action, revision: incident.revision, since: Date.now(), commandId: body.command_id });
  store.changed('pending', { incident_id: incident.incident_id });
}
