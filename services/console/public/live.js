// @ts-check
// The live stream (/api/stream, server-sent events) into the store, and the indicator that shows
// its state. EventSource reconnects by itself; a stream closed for good checks the session.
import { applyIncident, store } from './store.js';

const live = /** @type {HTMLElement} */ (document.getElementById('live'));
const liveText = /** @type {HTMLElement} */ (document.getElementById('live-text'));
/**
 * @param {string} state
 * @param {string} text
 */
function setLive(state, text) {
  live.dataset.state = state;
  liveText.textContent = text;
}

/** @type {EventSource} */
let source;
export function connect() {
  setLive(store.ready ? 'reconnecting' : 'connecting', store.ready ? 'Reconnecting…' : 'Connecting…');
  // EventSource resends Last-Event-ID by itself when it reconnects; the server then replays what
  // was missed, or sends a new snapshot when it cannot.
  source = new EventSource('/api/stream');
  source.addEventListener('hello', (e) => {
    const hello = JSON.parse(e.data);
    const roleChanged = store.role !== hello.role;
    store.user = hello.user;
    store.role = hello.role ?? null;
    /** @type {HTMLElement} */ (document.getElementById('user')).textContent = store.user;
    const role = /** @type {HTMLElement} */ (document.getElementById('role'));
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
