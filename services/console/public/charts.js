// Sensor charts of the vehicle page (uPlot): one small chart per sensor, cursors synced, the
// incident's anomalous windows shaded. Contributors first and marked; the rest behind a toggle and
// only drawn when opened.
import uPlot from '/vendor/uPlot.esm.js';
import { h } from './dom.js';

const AXIS = { stroke: '#8795a8', grid: { stroke: '#1d2733', width: 1 }, ticks: { stroke: '#243040', width: 1 }, font: '11px system-ui, sans-serif' };
const CHART_HEIGHT = 136;
const timeLabel = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const pct = (share) => (share < 0.005 ? '<1%' : `${Math.round(share * 100)}%`);

function bandPlugin(band) {
  return {
    hooks: {
      drawClear: [
        (u) => {
          if (!band) return;
          const { ctx, bbox } = u;
          const x0 = Math.max(bbox.left, u.valToPos(band.from, 'x', true));
          const x1 = Math.min(bbox.left + bbox.width, u.valToPos(band.to, 'x', true));
          if (!(x1 > x0)) return;
          ctx.save();
          ctx.fillStyle = 'rgba(248, 81, 73, 0.10)';
          ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
          ctx.strokeStyle = 'rgba(248, 81, 73, 0.55)';
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(x0 + 0.5, bbox.top);
          ctx.lineTo(x0 + 0.5, bbox.top + bbox.height);
          ctx.stroke();
          ctx.restore();
        },
      ],
    },
  };
}

function chartFor(el, data, sensor, spec, color, band, width) {
  /** @type {uPlot.Options} */
  const opts = {
    width,
    height: CHART_HEIGHT,
    ms: 1,
    cursor: { sync: { key: 'pitwall-sensors' }, points: { size: 5 } },
    legend: { show: false },
    scales: { x: { time: true, range: [data.from, data.to] } },
    axes: [
      { ...AXIS, space: 70, values: (u, ticks) => ticks.map(timeLabel) },
      { ...AXIS, size: 52, values: (u, ticks) => ticks.map((t) => (Math.abs(t) >= 1000 ? t.toFixed(0) : +t.toPrecision(4))) },
    ],
    series: [{}, { label: sensor, stroke: color, width: 1.5, points: { show: false }, value: (u, v) => (v == null ? '—' : `${+v.toPrecision(4)} ${spec?.unit ?? ''}`) }],
    plugins: [bandPlugin(band)],
  };
  return new uPlot(opts, [data.ts, data.sensors[sensor] ?? []], el);
}

/**
 * Renders into `root`; returns a cleanup function. `data` is the /telemetry response; `incident`
 * the selected incident (or null).
 */
export function renderCharts(root, data, incident) {
  const plots = [];
  const band = incident ? { from: incident.first_window_start, to: Math.max(incident.last_anomalous_window_end, incident.first_window_start) } : null;
  const specs = new Map((data.specs ?? []).map((s) => [s.name, s]));
  const contributors = (incident?.contributors ?? []).filter((c) => specs.has(c.sensor));
  const contributorNames = new Set(contributors.map((c) => c.sensor));
  const others = [...specs.keys()].filter((n) => !contributorNames.has(n));
  const width = () => Math.max(280, root.clientWidth - 22);

  const card = (sensor, contributor, rank) => {
    const spec = specs.get(sensor);
    const oor = data.out_of_range?.[sensor]?.length ?? 0;
    const chartEl = h('div.chart');
    const el = h(
      `div.chart-card${contributor ? '.contributor' : ''}`,
      { dataset: { sensor } },
      h(
        'div.chart-title',
        h('span.name', sensor),
        h('span.unit', spec ? `${spec.unit} · ${spec.group}` : ''),
        contributor ? h('span.badge', { title: 'Share of the reconstruction error in the latest anomalous window' }, `contributor #${rank} · ${pct(contributor.share)}`) : null,
        oor ? h('span.badge.badge-oor', { title: 'Readings outside the plausible range' }, `${oor} out of range`) : null,
      ),
      chartEl,
    );
    return { el, draw: () => plots.push(chartFor(chartEl, data, sensor, spec, contributor ? '#f0883e' : '#58a6ff', band, width())) };
  };

  const top = contributors.map((c, i) => card(c.sensor, c, i + 1));
  const rest = others.map((s) => card(s, null, 0));
  const othersBox = h(
    'details.others',
    { id: 'other-sensors' },
    h('summary', `Other sensors (${rest.length})`),
    h(
      'div.charts',
      rest.map((c) => c.el),
    ),
  );
  let othersDrawn = false;
  othersBox.addEventListener('toggle', () => {
    if (othersBox.open && !othersDrawn) {
      othersDrawn = true;
      for (const c of rest) c.draw();
    }
  });
  root.replaceChildren(
    h(
      'div.charts',
      top.map((c) => c.el),
    ),
    rest.length ? othersBox : null,
  );
  for (const c of top) c.draw();
  if (top.length === 0) {
    othersBox.open = true;
  }

  let lastWidth = width();
  const ro = new ResizeObserver(() => {
    const w = width();
    if (w === lastWidth) return;
    lastWidth = w;
    for (const p of plots) p.setSize({ width: w, height: CHART_HEIGHT });
  });
  ro.observe(root);
  return () => {
    ro.disconnect();
    for (const p of plots) p.destroy();
  };
}
