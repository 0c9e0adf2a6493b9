// @ts-check
// Drift panels: how far the live windows have moved from the model's training data, per feature
// (population stability index; < 0.1 stable, 0.1–0.25 moderate, > 0.25 significant). The fleet's
// from GET /api/drift, a vehicle's from GET /api/vehicles/<id>/drift; refreshed every 30 s while
// shown. Every text goes through h() (textContent).
import { h, timeEl } from './dom.js';

const REFRESH_MS = 30_000;

const fmtPsi = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x >= 10 ? x.toFixed(0) : x.toFixed(3));
const readingBadge = (r) => (r ? h(`span.drift.drift-${r}`, r) : h('span.muted', '—'));

/** Rows of top features: feature, PSI, reading. */
function featureTable(top, caption) {
  if (!top.length) return h('p.muted', 'No windows in the period yet.');
  return h(
    'table.drift-table',
    h('caption.muted', caption),
    h(
      'thead',
      h(
        'tr',
        ['Feature', 'PSI', 'Reading'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      top.map((d) => h('tr', { dataset: { feature: d.feature, reading: d.reading } }, h('td.mono', d.feature), h('td.num', fmtPsi(d.psi)), h('td', readingBadge(d.reading)))),
    ),
  );
}

function modelBlock(m) {
  const title = h('h3', `${m.model} ${m.version}`, h('span.muted', m.role === 'shadow' ? ' · shadow' : ' · active'));
  if (!m.available) {
    return h(
      'div.drift-model',
      { dataset: { model: m.model, role: m.role, available: 'false' } },
      title,
      h('p.muted', 'Drift unavailable: this model version has no drift reference (metadata.drift). Train it with npm run train, or add one with npm run train -- --drift-reference.'),
    );
  }
  const minutes = Math.round(m.period_ms / 60_000);
  return h(
    'div.drift-model',
    { dataset: { model: m.model, role: m.role, available: 'true', reading: m.reading ?? '' } },
    title,
    h(
      'p',
      'Highest PSI ',
      h('strong.num', { id: m.role === 'active' ? 'fleet-max-psi' : null }, fmtPsi(m.max_psi)),
      ' ',
      readingBadge(m.reading),
      h('span.muted', ` · ${m.significant} features above 0.25 · ${m.windows} windows in the last ${minutes} min · ${m.replicas} scoring replica${m.replicas === 1 ? '' : 's'} · `, timeEl(m.at)),
    ),
    featureTable(m.top, 'Top drifting features'),
  );
}

/** A fleet drift panel and its refresh; returns { panel, stop }. */
export function fleetDriftPanel() {
  const body = h('div.panel-body', { id: 'fleet-drift' }, h('p.muted', 'Loading…'));
  const panel = h('section.panel', h('div.panel-head', h('h2', 'Model drift'), h('span.muted', 'live windows against the training data')), body);
  const load = async () => {
    try {
      const res = await fetch('/api/drift', { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const { models } = await res.json();
      body.replaceChildren(...(models.length ? models.map(modelBlock) : [h('p.muted', 'No drift reported yet: scoring publishes it every minute once windows are scored.')]));
    } catch (err) {
      body.replaceChildren(h('p.notice.notice-error', `Drift could not be loaded: ${/** @type {Error} */ (err).message}`));
    }
  };
  void load();
  const timer = setInterval(load, REFRESH_MS);
  return { panel, stop: () => clearInterval(timer) };
}

/** A vehicle's drift panel and its refresh; returns { panel, stop }. */
export function vehicleDriftPanel(vehicleId) {
  const body = h('div.panel-body', { id: 'vehicle-drift' }, h('p.muted', 'Loading…'));
  const panel = h('section.panel', h('div.panel-head', h('h2', 'Drift'), h('span.muted', 'recent windows against the training data')), body);
  const load = async () => {
    try {
      const res = await fetch(`/api/vehicles/${encodeURIComponent(vehicleId)}/drift`, { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const { drift, fleet_vehicles: others } = await res.json();
      if (!drift) {
        body.replaceChildren(h('p.muted', 'No drift reported for this vehicle yet (or its model has no drift reference).'));
        return;
      }
      body.replaceChildren(
        h(
          'p',
          { dataset: { reading: drift.reading ?? '' } },
          'Highest PSI ',
          h('strong.num', { id: 'vehicle-max-psi' }, fmtPsi(drift.max_psi)),
          ' ',
          readingBadge(drift.reading),
          h('span.muted', ` · its last ${drift.windows} windows · model ${drift.model} ${drift.version} · `, timeEl(drift.at)),
        ),
        others && others.median_max_psi !== null
          ? h('p', { id: 'vehicle-drift-fleet' }, 'Typical vehicle: highest PSI ', h('strong.num', fmtPsi(others.median_max_psi)), h('span.muted', ` (median of ${others.vehicles} vehicles)`))
          : '',
        featureTable(drift.top, 'Top drifting features'),
        h(
          'p.muted',
          "One car's windows sit in few of the fleet's bins for car-specific sensors (battery charge, tire pressures), so a single vehicle reads high even when nothing changed: compare it with the typical vehicle, and the fleet panel with 0.25.",
        ),
      );
    } catch (err) {
      body.replaceChildren(h('p.notice.notice-error', `Drift could not be loaded: ${/** @type {Error} */ (err).message}`));
    }
  };
  void load();
  const timer = setInterval(load, REFRESH_MS);
  return { panel, stop: () => clearInterval(timer) };
}
