// @ts-check
// Routing between the fleet view and a vehicle's page without reloading (the live stream stays
// connected). The views are handed in by app.js, so they can import navigate() from here without
// an import cycle.
import { h } from './dom.js';

/**
 * @typedef {(root: HTMLElement, params: URLSearchParams) => () => void} FleetView
 * @typedef {(root: HTMLElement, vehicleId: string, params: URLSearchParams) => () => void} VehicleView
 */

const view = /** @type {HTMLElement} */ (document.getElementById('view'));
const crumbs = /** @type {HTMLElement} */ (document.getElementById('crumbs'));
let unmount = () => {};
/** @type {{ fleet: FleetView, vehicle: VehicleView } | undefined} */
let views;

function route() {
  if (!views) return;
  unmount();
  const m = /^\/vehicles\/([^/]+)$/.exec(location.pathname);
  const params = new URLSearchParams(location.search);
  view.replaceChildren();
  if (m) {
    const vehicleId = decodeURIComponent(m[1] ?? '');
    document.title = `${vehicleId} · Pitwall console`;
    crumbs.replaceChildren(h('a', { href: '/', 'data-nav': true }, 'Fleet'), h('span.sep', '/'), h('span.here.mono', vehicleId));
    unmount = views.vehicle(view, vehicleId, params);
  } else {
    document.title = 'Fleet · Pitwall console';
    crumbs.replaceChildren(h('span.here', 'Fleet'));
    unmount = views.fleet(view, params);
  }
}

/**
 * @param {string} url
 * @param {{ replace?: boolean }} [options]
 */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
  if (!replace) window.scrollTo(0, 0);
}

/**
 * Starts routing: links marked data-nav and the back button change the view in place.
 * @param {{ fleet: FleetView, vehicle: VehicleView }} routes
 */
export function startRouter(routes) {
  views = routes;
  document.addEventListener('click', (e) => {
    const a = /** @type {Element | null} */ (e.target instanceof Element ? e.target.closest('a[data-nav]') : null);
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute('href') ?? '/');
  });
  window.addEventListener('popstate', route);
  route();
}
