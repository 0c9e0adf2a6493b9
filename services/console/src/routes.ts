/**
 * The console's routes, in three tables tried in order:
 *  - open: probes, static files, sign-in and sign-out (each checks what it needs itself);
 *  - then every request needs a session, and a write an allowed Origin (auth.admit);
 *  - pages (anything else outside /api is a plain-text 404), or the JSON API, whose path
 *    segments are URL-decoded before matching (an unknown API path: 404 for reads, 405 for writes).
 * The route modules under routes/ say what each route does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth, SignedIn } from './auth.js';
import { HttpError, notFoundText } from './http.js';
import type { Live } from './live.js';
import { matchRoute, pathSegments, requestContext, type Route } from './router.js';
import { incidentRoutes, type IncidentRouteDeps } from './routes/incidents.js';
import { probeRoutes, type ProbeDeps } from './routes/probes.js';
import { sessionApiRoutes, signInRoutes, type SessionRouteDeps } from './routes/session.js';
import { fileRoutes, pageRoutes } from './routes/static.js';
import { vehicleRoutes, type VehicleRouteDeps } from './routes/vehicles.js';

export type RouteDeps = ProbeDeps & SessionRouteDeps & IncidentRouteDeps & VehicleRouteDeps & { auth: Auth; live: Pick<Live, 'stream'> };

export function createRoutes(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const open = [...probeRoutes(deps), ...fileRoutes(deps.files), ...signInRoutes(deps)];
  const pages = pageRoutes(deps.files);
  const stream: Route<SignedIn> = { method: 'GET', path: '/api/stream', handle: (ctx) => deps.live.stream(ctx) };
  const api = [...sessionApiRoutes(deps), stream, ...incidentRoutes(deps), ...vehicleRoutes(deps)];

  return async (req, res) => {
    const ctx = requestContext(req, res);
    const { method, isRead } = ctx;
    const p = ctx.url.pathname;
    const segments = pathSegments(p);
    const found = matchRoute(open, method, segments);
    if (found) return found.route.handle(ctx, found.params);

    const isApi = p === '/api' || p.startsWith('/api/');
    const principal = deps.auth.admit(ctx, isApi);
    if (!principal) return;
    const signedIn: SignedIn = { ...ctx, principal };
    if (!isApi) {
      const page = matchRoute(pages, method, segments);
      if (page) return page.route.handle(signedIn, page.params);
      return notFoundText(res);
    }
    // A malformed %-escape throws here: a 500, logged.
    const decoded = segments.map((s) => decodeURIComponent(s));
    const route = matchRoute(api, method, decoded);
    if (route) return route.route.handle(signedIn, route.params);
    throw new HttpError(isRead ? 404 : 405, isRead ? 'not_found' : 'method_not_allowed', `no route ${isRead ? 'GET' : method} ${p}`);
  };
}
