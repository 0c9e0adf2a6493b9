// The fleet view: health counts, the live incident list with filters kept in the URL query, and
// every known vehicle as a tile.
import { navigate } from './router.js';
import { store } from './store.js';
import { fleetDriftPanel } from './drift.js';
import { SEVERITIES, STATUSES, fmtScore, h, isOpen, sevBadge, sevRank, statusBadge, timeEl } from './dom.js';

const HEALTHS = [
  ['critical', 'Critical', 'High or critical incident open'],
  ['attention', 'Attention', 'Open incidents'],
  ['ok', 'OK', 'Scored, nothing open'],
  ['unknown', 'Unknown', 'No score yet'],
];
const HEALTH_ORDER = { critical: 0, attention: 1, unknown: 2, ok: 3 };
const DEFAULT_STATUSES = ['OPEN', 'ACKNOWLEDGED'];
const MAX_TILES = 400;

/** Filters from the URL query: severity=A,B status=A,B|all model=<version> health=<health>. */
export function readFilters(params) {
  const list = (name, allowed, fallback) => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    if (raw === 'all') return [...allowed];
    const items = raw.split(',').filter((x) => allowed.includes(x));
    return items.length ? items : [...allowed];
  };
  return {
    severity: list('severity', SEVERITIES, [...SEVERITIES]),
    status: list('status', STATUSES, DEFAULT_STATUSES),
    model: params.get('model') || '',
    health: HEALTHS.some(([k]) => k === params.get('health')) ? params.get('health') : '',
  };
}

function writeFilters(f) {
  const p = new URLSearchParams();
  if (f.severity.length !== SEVERITIES.length) p.set('severity', f.severity.join(','));
  const isDefault = f.status.length === DEFAULT_STATUSES.length && DEFAULT_STATUSES.every((s) => f.status.includes(s));
  if (!isDefault) p.set('status', f.status.length === STATUSES.length ? 'all' : f.status.join(','));
  if (f.model) p.set('model', f.model);
  if (f.health) p.set('health', f.health);
  const q = p.toString();
  navigate(`/${q ? `?${q}` : ''}`, { replace: true });
}

export function renderFleet(root, params) {
  const filters = readFilters(params);
  if (!store.ready) {
    root.append(h('div.loading', 'Loading fleet state…'));
    const wait = (kind) => kind === 'snapshot' && navigate(location.pathname + location.search, { replace: true });
    store.listeners.add(wait);
    return () => store.listeners.delete(wait);
  }

  // ---- summary
  const statEls = {};
  const summary = h(
    'section.summary',
    { 'aria-label': 'Fleet health' },
    HEALTHS.map(([key, label, hint]) => {
      const value = h('div.stat-value', '0');
      statEls[key] = value;
      return h(
        'button.stat',
        {
          type: 'button',
          title: `${hint}. Click to show only these vehicles.`,
          'aria-pressed': String(filters.health === key),
          dataset: { health: key },
          onclick: () => writeFilters({ ...filters, health: filters.health === key ? '' : key }),
        },
        h(`span.stat-bar.h-${key}`),
        h('div', value, h('div.stat-label', label)),
      );
    }),
  );

  // ---- incidents panel
  const chips = (name, values, selected) =>
    h(
      'span.filter-group',
      { role: 'group', 'aria-label': name },
      h('span.filter-label', name),
      values.map((v) =>
        h(
          'button.chip',
          {
            type: 'button',
            'aria-pressed': String(selected.includes(v)),
            dataset: { filter: name.toLowerCase(), value: v },
            onclick: () => {
              const key = name.toLowerCase();
              const next = filters[key].includes(v) ? filters[key].filter((x) => x !== v) : [...filters[key], v];
              writeFilters({ ...filters, [key]: next });
            },
          },
          v.charAt(0) + v.slice(1).toLowerCase(),
        ),
      ),
    );
  const modelSelect = h('select', { 'aria-label': 'Model version', id: 'filter-model', onchange: (e) => writeFilters({ ...filters, model: e.target.value }) });
  const countEl = h('span.count');
  const tbody = h('tbody');
  const table = h(
    'table.incidents',
    { id: 'incidents' },
    h('colgroup', h('col.col-sev'), h('col.col-vehicle'), h('col'), h('col.col-status'), h('col.col-score'), h('col.col-opened'), h('col.col-updated'), h('col.col-model')),
    h(
      'thead',
      h(
        'tr',
        ['Severity', 'Vehicle', 'Area', 'Status', 'Peak score', 'Opened', 'Updated', 'Model'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    tbody,
  );
  const incidentsPanel = h(
    'section.panel',
    h(
      'div.panel-head',
      h('h2', 'Incidents ', countEl),
      h('div.filters', chips('Severity', SEVERITIES, filters.severity), chips('Status', STATUSES, filters.status), h('span.filter-group', h('span.filter-label', 'Model'), modelSelect)),
    ),
    h('div.table-wrap', table),
  );

  // ---- vehicles panel
  const tiles = h('div.tiles', { id: 'vehicles' });
  const vehiclesCount = h('span.count');
  const vehiclesPanel = h(
    'section.panel',
    h(
      'div.panel-head',
      h('h2', 'Vehicles ', vehiclesCount),
      h(
        'div.legend',
        HEALTHS.map(([k, label]) => h('span', h(`i.h-${k}`), label)),
      ),
    ),
    h('div.panel-body', tiles),
  );

  const { panel: driftPanel, stop: stopDrift } = fleetDriftPanel();
  driftPanel.classList.add('fleet-drift');
  root.append(summary, h('div.fleet-grid', incidentsPanel, vehiclesPanel), driftPanel);

  const flashes = new Set();
  const renderIncidents = () => {
    const all = [...store.incidents.values()];
    const models = [...new Set(all.map((i) => i.model_version))].sort();
    if (filters.model && !models.includes(filters.model)) models.push(filters.model);
    // Rebuilt only when the set of versions changes: rebuilding would close an open drop-down.
    const modelsKey = models.join('\u0000');
    if (modelSelect.dataset.models !== modelsKey || modelSelect.options.length === 0) {
      modelSelect.dataset.models = modelsKey;
      modelSelect.replaceChildren(h('option', { value: '' }, 'All versions'), ...models.map((m) => h('option', { value: m, selected: m === filters.model }, m)));
    }
    const shown = all
      .filter((i) => filters.severity.includes(i.severity) && filters.status.includes(i.status) && (!filters.model || i.model_version === filters.model))
      .sort((a, b) => Number(isOpen(b)) - Number(isOpen(a)) || sevRank(b.severity) - sevRank(a.severity) || b.updated_at - a.updated_at);
    countEl.textContent = `${shown.length}${shown.length !== all.length ? ` of ${all.length}` : ''}`;
    if (shown.length === 0) {
      const quiet = all.filter(isOpen).length === 0;
      tbody.replaceChildren(
        h(
          'tr.empty-row',
          h(
            'td',
            { colspan: 8 },
            h(
              'div.empty',
              h('strong', quiet ? 'No open incidents' : 'No incidents match these filters'),
              quiet ? 'The fleet is quiet. New incidents appear here as soon as they are opened.' : 'Widen the severity, status or model filters above.',
            ),
          ),
        ),
      );
      return;
    }
    tbody.replaceChildren(
      ...shown.map((i) => {
        const pending = store.pending.get(i.incident_id);
        const href = `/vehicles/${encodeURIComponent(i.vehicle_id)}?incident=${encodeURIComponent(i.incident_id)}`;
        const ratio = i.threshold > 0 ? i.peak_score / i.threshold : 0;
        const row = h(
          `tr${isOpen(i) ? '' : '.closed'}`,
          { dataset: { incident: i.incident_id, status: i.status, vehicle: i.vehicle_id }, onclick: () => navigate(href) },
          h('td', sevBadge(i.severity)),
          h('td', h('a.mono', { href, 'data-nav': true, onclick: (e) => e.stopPropagation() }, i.vehicle_id)),
          h('td', { title: i.action }, i.area, h('span.sub', i.component)),
          h(
            'td',
            statusBadge(i.status),
            pending
              ? h('span.sub.pending', h('span.spinner'), pending.action === 'ACKNOWLEDGE' ? 'acknowledging…' : 'resolving…')
              : i.acknowledged_by && i.status === 'ACKNOWLEDGED'
                ? h('span.sub', `by ${i.acknowledged_by}`)
                : null,
          ),
          h(
            'td.num',
            { title: `peak ${i.peak_score} / threshold ${i.threshold}` },
            `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}× thr`,
            h('span.ratio', h('i', { style: { width: `${Math.min(100, (ratio / 4) * 100)}%` } })),
          ),
          h('td', timeEl(i.opened_at)),
          h('td', timeEl(i.updated_at)),
          h('td.mono', { title: `${i.model_name} ${i.model_version}` }, i.model_version),
        );
        if (flashes.has(i.incident_id)) row.classList.add('flash');
        return row;
      }),
    );
    flashes.clear();
  };

  const renderVehicles = () => {
    const all = [...store.vehicles.values()];
    const counts = { critical: 0, attention: 0, ok: 0, unknown: 0 };
    for (const v of all) counts[v.health]++;
    for (const [k] of HEALTHS) statEls[k].textContent = String(counts[k]);
    const shown = all.filter((v) => !filters.health || v.health === filters.health).sort((a, b) => HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health] || (a.vehicle_id < b.vehicle_id ? -1 : 1));
    vehiclesCount.textContent = filters.health ? `${shown.length} of ${all.length}` : String(all.length);
    if (shown.length === 0) {
      tiles.replaceChildren(
        h(
          'div.empty',
          h('strong', all.length ? 'No vehicle in this state' : 'No vehicles yet'),
          all.length ? 'Click the highlighted count again to show all.' : 'Vehicles appear once their first window is scored.',
        ),
      );
      return;
    }
    tiles.replaceChildren(
      ...shown
        .slice(0, MAX_TILES)
        .map((v) =>
          h(
            `a.tile.tile-${v.health}`,
            { href: `/vehicles/${encodeURIComponent(v.vehicle_id)}`, 'data-nav': true, title: `${v.vehicle_id}: ${v.health}`, dataset: { vehicle: v.vehicle_id, health: v.health } },
            h('span.id', v.vehicle_id),
            h('span.meta', v.open_incidents ? `${v.open_incidents} open · ${v.top_severity.toLowerCase()}` : v.last_score ? `score ${fmtScore(v.last_score.score)}` : 'no score yet'),
          ),
        ),
      ...(shown.length > MAX_TILES ? [h('div.muted', `and ${shown.length - MAX_TILES} more`)] : []),
    );
  };

  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      renderIncidents();
      renderVehicles();
    }, 250);
  };
  const listener = (kind, detail) => {
    if (kind === 'incident' && detail?.significant) flashes.add(detail.incident_id);
    schedule();
  };
  store.listeners.add(listener);
  renderIncidents();
  renderVehicles();
  return () => {
    store.listeners.delete(listener);
    stopDrift();
  };
}
