// Small DOM and formatting helpers. Every text goes through textContent: no HTML from data.

/** h('div.cls#id', {attr}, ...children) */
/**
 * An element from a spec ("tag.class#id"), attributes and children (nodes, strings, arrays, null).
 * Typed loosely on purpose: the spec decides the element, so its own properties (open, disabled,
 * value) are allowed without a cast.
 * @param {string} spec
 * @param {any} [attrs]
 * @param {...any} children
 * @returns {HTMLElement & Record<string, any>}
 */
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m ? m[1] : 'div');
  for (const part of (m?.[2] ?? '').match(/[.#][\w-]+/g) ?? []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = undefined;
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    // Through CSSOM: the Content-Security-Policy refuses style attributes.
    else if (k === 'style') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
export const STATUSES = ['OPEN', 'ACKNOWLEDGED', 'CLEARED', 'RESOLVED'];
export const isOpen = (i) => i.status === 'OPEN' || i.status === 'ACKNOWLEDGED';
export const sevRank = (s) => SEVERITIES.indexOf(s);

const title = (s) => s.charAt(0) + s.slice(1).toLowerCase();
export const statusLabel = (s) => title(s);
export const sevBadge = (s) => h(`span.sev.sev-${s}`, title(s));
export const statusBadge = (s) => h(`span.status.status-${s}`, statusLabel(s));

/** "just now", "3 min ago", "in 2 min", "5 h ago", then a date. Kept current by refreshRelativeTimes. */
export function relativeTime(ts, now = Date.now()) {
  const d = now - ts;
  const a = Math.abs(d);
  const fmt = (n, unit) => (d >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (a < 10_000) return 'just now';
  if (a < 60_000) return fmt(Math.round(a / 1000), 's');
  if (a < 3_600_000) return fmt(Math.round(a / 60_000), 'min');
  if (a < 86_400_000) return fmt(Math.round(a / 3_600_000), 'h');
  if (a < 7 * 86_400_000) return fmt(Math.round(a / 86_400_000), 'd');
  return new Date(ts).toLocaleDateString();
}

export const absoluteTime = (ts) => new Date(ts).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A <time> that shows a relative time and the exact one on hover. */
export function timeEl(ts) {
  if (ts === null || ts === undefined) return h('span.muted', '—');
  return h('time', { datetime: new Date(ts).toISOString(), title: absoluteTime(ts), dataset: { ts: String(ts) } }, relativeTime(ts));
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[data-ts]')) {
    if (!(el instanceof HTMLElement)) continue;
    const text = relativeTime(Number(el.dataset.ts), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

export const fmtScore = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));

export function toast(text, kind = 'info', ms = 5000) {
  const box = /** @type {HTMLElement} */ (document.getElementById('toasts'));
  const t = h(`div.toast${kind === 'error' ? '.toast-error' : ''}`, { role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(t);
  setTimeout(() => t.remove(), ms);
}
