// A vehicle's page: its health, its incidents (one selected), the selected incident's facts,
// actions and history, and the sensor charts around the incident's first window.
import { navigate } from './router.js';
import { canAct, sendAction, store } from './store.js';
import { renderCharts } from './charts.js';
import { vehicleDriftPanel } from './drift.js';
import { absoluteTime, fmtScore, h, isOpen, sevBadge, statusBadge, timeEl, toast } from './dom.js';

const SLOW_MS = 20_000;

function pickIncident(list, wanted) {
  if (wanted && list.some((i) => i.incident_id === wanted)) return wanted;
  return (list.find(isOpen) ?? list[0])?.incident_id ?? null;
}

export function renderVehicle(root, vehicleId, params) {
  const incidentsOf = () => [...store.incidents.values()].filter((i) => i.vehicle_id === vehicleId).sort((a, b) => Number(isOpen(b)) - Number(isOpen(a)) || b.opened_at - a.opened_at);
  const wanted = params.get('incident');
  let selected = null;
  // Closed incidents older than the list's retention are not in the snapshot: ask the API once.
  let fetchedOlder = false;

  const head = h('div.vehicle-head');
  const tabs = h('div.incident-tabs', { id: 'incident-tabs' });
  const facts = h('div', { id: 'incident-facts' });
  const history = h('ol.timeline', { id: 'history' });
  const note = h('textarea', { id: 'note', maxlength: '500', placeholder: 'What was done or decided (optional, visible in the history)' });
  const ackBtn = h('button.btn.btn-primary', { type: 'button', id: 'ack' }, 'Acknowledge');
  const resolveBtn = h('button.btn.btn-danger', { type: 'button', id: 'resolve' }, 'Resolve');
  const actionStatus = h('div.action-status', { id: 'action-status', role: 'status' });
  const actionBox = h('div.action-box', { id: 'actions' }, h('label', { for: 'note' }, 'Note'), note, h('div.action-row', ackBtn, resolveBtn), actionStatus);
  const detailPanel = h('section.panel', h('div.panel-head', h('h2', 'Incident'), h('span.count', { id: 'incident-rev' })), h('div.panel-body', facts, actionBox));
  const historyPanel = h('section.panel', h('div.panel-head', h('h2', 'History')), h('div.panel-body', history));
  const chartsMeta = h('span.muted', { id: 'charts-meta' });
  const reloadBtn = h('button.btn.btn-sm', { type: 'button', id: 'reload-telemetry' }, 'Reload');
  const truncation = h('p.notice.notice-warn', { id: 'truncated', hidden: true });
  const charts = h('div', { id: 'charts' });
  const chartsPanel = h(
    'section.panel',
    h('div.panel-head.charts-head', h('h2', 'Sensors'), chartsMeta, h('span', { style: { marginLeft: 'auto' } }, reloadBtn)),
    h('div.panel-body', truncation, charts),
  );
  const { panel: driftPanel, stop: stopDrift } = vehicleDriftPanel(vehicleId);
  root.append(
    head,
    h(
      'div.vehicle-grid',
      h('div.side', h('section.panel', h('div.panel-head', h('h2', 'Incidents'), h('span.count', { id: 'incident-count' })), h('div.panel-body', tabs)), detailPanel, driftPanel, historyPanel),
      chartsPanel,
    ),
  );

  // ---------------------------------------------------------------- header
  const renderHead = () => {
    const v = store.vehicles.get(vehicleId);
    const health = v?.health ?? 'unknown';
    const s = v?.last_score;
    head.replaceChildren(
      h('h1', vehicleId),
      h(`span.health.health-${health}`, { id: 'vehicle-health' }, health),
      s
        ? h('span.muted', 'Last window ', timeEl(s.window_end), ': score ', h('span.num', fmtScore(s.score)), ' / threshold ', h('span.num', fmtScore(s.threshold)), ` · model ${s.model_version}`)
        : h('span.muted', store.ready ? 'No score in the recent windows' : 'Loading…'),
    );
  };

  // ---------------------------------------------------------------- incident side
  const renderTabs = (list) => {
    /** @type {HTMLElement} */ (document.getElementById('incident-count')).textContent = list.length ? String(list.length) : '';
    if (list.length === 0) {
      tabs.replaceChildren(h('div.empty', h('strong', store.ready ? 'No incidents' : 'Loading…'), store.ready ? 'Nothing has been opened for this vehicle recently.' : ''));
      return;
    }
    tabs.replaceChildren(
      ...list.map((i) =>
        h(
          'button.incident-tab',
          { type: 'button', 'aria-current': String(i.incident_id === selected), dataset: { incident: i.incident_id }, onclick: () => select(i.incident_id) },
          sevBadge(i.severity),
          h('span', i.area, ' · ', statusBadge(i.status)),
          h('span.when', timeEl(i.opened_at)),
        ),
      ),
    );
  };

  const fact = (k, v) => [h('dt', k), h('dd', v)];
  const renderDetail = (i) => {
    if (!i) {
      detailPanel.hidden = true;
      historyPanel.hidden = true;
      return;
    }
    detailPanel.hidden = false;
    historyPanel.hidden = false;
    /** @type {HTMLElement} */ (document.getElementById('incident-rev')).textContent = `revision ${i.revision}`;
    facts.replaceChildren(
      h(
        'dl.facts',
        fact('Severity', sevBadge(i.severity)),
        fact('Status', h('span', { id: 'incident-status', dataset: { status: i.status } }, statusBadge(i.status), i.acknowledged_by ? h('span.muted', ` by ${i.acknowledged_by}`) : null)),
        fact('Area', `${i.area} — ${i.component}`),
        fact('Opened', [timeEl(i.opened_at), h('span.muted', ` · ${absoluteTime(i.opened_at)}`)]),
        fact('Last change', [i.last_change.toLowerCase(), ' ', timeEl(i.updated_at)]),
        fact('Scores', h('span.num', `last ${fmtScore(i.last_score)} · peak ${fmtScore(i.peak_score)} · threshold ${fmtScore(i.threshold)}`)),
        fact('Windows', `${i.anomalous_windows} anomalous · ${i.consecutive_normal} normal since`),
        fact('Delivered to car', i.delivered_at ? timeEl(i.delivered_at) : h('span.muted', 'not confirmed yet')),
        fact('Model', h('span.mono', `${i.model_name} ${i.model_version}`)),
        fact('Incident id', h('span.mono', i.incident_id)),
      ),
      h('p.recommend', h('strong', 'Recommended: '), i.action),
    );
    history.replaceChildren(
      ...[...i.history]
        .reverse()
        .map((e) =>
          h(
            `li.change-${e.change}`,
            h('div', h('span.change', e.change.charAt(0) + e.change.slice(1).toLowerCase()), ' ', sevBadge(e.severity)),
            h('div.meta', timeEl(e.at), e.by ? ` · ${e.by}` : '', e.score !== null && e.score !== undefined ? ` · score ${fmtScore(e.score)}` : ''),
            e.note ? h('div.note', e.note) : null,
          ),
        ),
    );
    renderActions(i);
  };

  const renderActions = (i) => {
    const pending = store.pending.get(i.incident_id);
    const open = isOpen(i);
    const allowed = canAct();
    actionBox.hidden = false;
    // A read-only role gets no buttons (the server would refuse them with 403 anyway).
    for (const el of [note, ackBtn, resolveBtn, actionBox.querySelector('label[for="note"]')]) if (el instanceof HTMLElement) el.hidden = allowed === false;
    note.disabled = !open || Boolean(pending) || !allowed;
    ackBtn.disabled = i.status !== 'OPEN' || Boolean(pending) || !allowed;
    resolveBtn.disabled = !open || Boolean(pending) || !allowed;
    if (allowed === false) {
      actionStatus.replaceChildren(h('span.muted', { id: 'read-only' }, `Your role (${store.role}) can follow incidents but not acknowledge or resolve them.`));
    } else if (pending) {
      const slow = Date.now() - pending.since > SLOW_MS;
      actionStatus.replaceChildren(
        h(
          'span.pending',
          { id: 'pending' },
          h('span.spinner'),
          `${pending.action === 'ACKNOWLEDGE' ? 'Acknowledgement' : 'Resolution'} sent — waiting for the incidents service to confirm…${slow ? ' (taking longer than usual)' : ''}`,
        ),
      );
    } else if (!open) {
      actionStatus.replaceChildren(h('span.muted', `Closed ${i.status === 'CLEARED' ? 'automatically after normal windows' : `by ${i.resolved_by ?? 'an operator'}`}; nothing to do.`));
    } else if (i.status === 'ACKNOWLEDGED') {
      actionStatus.replaceChildren(h('span.muted', `Acknowledged by ${i.acknowledged_by ?? '?'}; resolve it once the car is fixed.`));
    } else {
      actionStatus.replaceChildren(h('span.muted', 'Acknowledge to tell the team you are on it.'));
    }
  };

  const act = async (action) => {
    const i = store.incidents.get(selected);
    if (!i) return;
    ackBtn.disabled = resolveBtn.disabled = true;
    try {
      await sendAction(i, action, note.value.trim());
      note.value = '';
    } catch (err) {
      toast(`Could not ${action === 'ACKNOWLEDGE' ? 'acknowledge' : 'resolve'}: ${/** @type {Error} */ (err).message}`, 'error', 8000);
    }
    renderActions(store.incidents.get(selected) ?? i);
  };
  ackBtn.addEventListener('click', () => act('ACKNOWLEDGE'));
  resolveBtn.addEventListener('click', () => act('RESOLVE'));

  // ---------------------------------------------------------------- charts
  let chartsFor;
  let cleanupCharts = () => {};
  let loadSeq = 0;
  const loadCharts = async (force = false) => {
    const i = selected ? store.incidents.get(selected) : null;
    const key = i ? i.incident_id : 'recent';
    if (!force && chartsFor === key) return;
    chartsFor = key;
    const seq = ++loadSeq;
    cleanupCharts();
    cleanupCharts = () => {};
    truncation.hidden = true;
    charts.replaceChildren(h('div.charts-placeholder', h('span', h('span.spinner'), ' Reading telemetry from Kafka…')));
    const now = Date.now();
    const q = i ? `incident=${encodeURIComponent(i.incident_id)}` : `from=${now - 7 * 60_000}&to=${now}`;
    let data;
    try {
      const res = await fetch(`/api/vehicles/${encodeURIComponent(vehicleId)}/telemetry?${q}`, { headers: { accept: 'application/json' } });
      data = await res.json();
      if (!res.ok) throw new Error(data.message ?? `HTTP ${res.status}`);
    } catch (err) {
      if (seq === loadSeq) charts.replaceChildren(h('div.charts-placeholder', `Telemetry could not be read: ${/** @type {Error} */ (err).message}`));
      return;
    }
    if (seq !== loadSeq) return;
    const span = `${new Date(data.from).toLocaleTimeString()} – ${new Date(data.to).toLocaleTimeString()}`;
    chartsMeta.textContent = `${data.ts.length} readings · ${span}${data.partition !== null ? ` · partition ${data.partition}` : ''}${i ? ' · shaded: anomalous windows' : ''}`;
    if (data.truncated) {
      const why = {
        'scan-limit': `the read stopped after ${data.scanned.toLocaleString()} records of the partition (limit)`,
        'points-limit': `only the first ${data.limits.max_points.toLocaleString()} readings are kept`,
        timeout: 'the read timed out',
      }[data.truncated];
      truncation.textContent = `Incomplete: ${why}. The charts show what was read.`;
      truncation.hidden = false;
    }
    if (data.ts.length === 0) {
      charts.replaceChildren(h('div.empty', h('strong', 'No telemetry in this range'), `Nothing from ${vehicleId} between ${span} on the telemetry topic.`));
      return;
    }
    cleanupCharts = renderCharts(charts, data, i);
  };
  reloadBtn.addEventListener('click', () => loadCharts(true));

  // ---------------------------------------------------------------- wiring
  const select = (id) => {
    if (id === selected) return;
    navigate(`/vehicles/${encodeURIComponent(vehicleId)}${id ? `?incident=${encodeURIComponent(id)}` : ''}`, { replace: true });
  };

  const render = () => {
    const list = incidentsOf();
    if (wanted && !store.incidents.has(wanted) && store.ready && !fetchedOlder) {
      fetchedOlder = true;
      fetch(`/api/incidents/${encodeURIComponent(wanted)}`, { headers: { accept: 'application/json' } })
        .then((r) => (r.ok ? r.json() : null))
        .then(
          (b) => {
            if (b?.incident?.vehicle_id === vehicleId && !store.incidents.has(b.incident.incident_id)) store.incidents.set(b.incident.incident_id, b.incident);
            render();
          },
          () => {},
        );
    }
    selected = pickIncident(list, wanted);
    renderHead();
    renderTabs(list);
    renderDetail(selected ? store.incidents.get(selected) : null);
    if (store.ready) loadCharts();
  };

  const listener = (kind, detail) => {
    if (kind === 'vehicles') return renderHead();
    if ((kind === 'incident' || kind === 'pending') && detail?.incident_id) {
      const i = store.incidents.get(detail.incident_id);
      if (i && i.vehicle_id !== vehicleId) return;
    }
    render();
  };
  store.listeners.add(listener);
  const slowTimer = setInterval(() => {
    const i = selected && store.incidents.get(selected);
    if (i && store.pending.has(i.incident_id)) renderActions(i);
  }, 5000);
  render();
  return () => {
    stopDrift();
    store.listeners.delete(listener);
    clearInterval(slowTimer);
    cleanupCharts();
  };
}
