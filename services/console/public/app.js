// The console's single page: state from /api/stream (SSE), routing between the fleet view and a
// vehicle's page without reloading (the stream stays connected), relative times kept current.
import { h, refreshRelativeTimes, toast } from './dom.js';
import { renderFleet } from './fleet.js';
import { renderVehicle } from './vehicle.js';

/**
 * Everything the views read. `pending`: actions sent and not yet seen in a new incident revision.
 * `role`: viewer, operator or admin (null until the stream says); the server enforces it, the
 * views only hide what the role cannot do.
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

// ---------------------------------------------------------------- live stream

const live = document.getElementById('live');
const liveText = document.getElementById('live-text');
function setLive(state, text) {
  live.dataset.state = state;
  liveText.textContent = text;
}

let source;
function connect() {
  setLive(store.ready ? 'reconnecting' : 'connecting', store.ready ? 'Reconnecting…' : 'Connecting…');
  // EventSource resends Last-Event-ID by itself when it reconnects; the server then replays what
  // was missed, or sends a new snapshot when it cannot.
  source = new EventSource('/api/stream');
  source.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data);
    const roleChanged = store.role !== hello.role;
    store.user = hello.user;
    store.role = hello.role ?? null;
    document.getElementById('user').textContent = store.user;
    const role = document.getElementById('role');
    role.textContent = store.role ?? '';
    role.hidden = !store.role;
    if (roleChanged) store.changed('role');
  });
  source.addEventListener('open', () => setLive('live', 'Live'));
  source.addEventListener('snapshot', (e) => {
    const snap = JSON.parse(e.data);
    store.incidents = new Map(snap.incidents.map((i) => [i.incident_id, i]));
    store.vehicles = new Map(snap.vehicles.map((v) => [v.vehicle_id, v]));
    store.ready = true;
    setLive('live', 'Live');
    store.changed('snapshot');
  });
  source.addEventListener('incident', (e) => applyIncident(JSON.parse(e.data)));
  source.addEventListener('removed', (e) => {
    const { incident_id } = JSON.parse(e.data);
    store.incidents.delete(incident_id);
    store.changed('incident', { incident_id });
  });
  source.addEventListener('vehicles', (e) => {
    for (const v of JSON.parse(e.data)) store.vehicles.set(v.vehicle_id, v);
    store.changed('vehicles');
  });
  source.addEventListener('error', async () => {
    if (source.readyState !== EventSource.CLOSED) return setLive('reconnecting', 'Reconnecting…');
    // Closed for good (e.g. a 401): find out whether the session is gone.
    setLive('down', 'Offline');
    const res = await fetch('/api/me', { headers: { accept: 'application/json' } }).catch(() => undefined);
    if (res?.status === 401) return void (location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    setTimeout(connect, 3000);
  });
}

function applyIncident(incident) {
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

/** Sends an acknowledge/resolve; the result shows up as a new incident revision on the stream. */
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

// ---------------------------------------------------------------- routing

const view = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
let unmount = () => {};

function route() {
  unmount();
  const m = /^\/vehicles\/([^/]+)$/.exec(location.pathname);
  const params = new URLSearchParams(location.search);
  view.replaceChildren();
  if (m) {
    const vehicleId = decodeURIComponent(m[1]);
    document.title = `${vehicleId} · Pitwall console`;
    crumbs.replaceChildren(h('a', { href: '/', 'data-nav': true }, 'Fleet'), h('span.sep', '/'), h('span.here.mono', vehicleId));
    unmount = renderVehicle(view, vehicleId, params);
  } else {
    document.title = 'Fleet · Pitwall console';
    crumbs.replaceChildren(h('span.here', 'Fleet'));
    unmount = renderFleet(view, params);
  }
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
  if (!replace) window.scrollTo(0, 0);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);
setInterval(() => refreshRelativeTimes(), 15_000);

connect();
route();
