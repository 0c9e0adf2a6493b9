/**
 * GET /healthz, /readyz and /metrics, for any method and without a session. /readyz lists the
 * console's own checks that fail as `not yet`, with the readiness tracker's (Kafka, consumers).
 */
import { serveMetrics, type Readiness, type Registry } from '@pitwall/common';
import { json } from '../http.js';
import type { RequestContext, Route } from '../router.js';

export interface ProbeDeps {
  metrics: Registry;
  readiness: Readiness;
  /** The console's own checks by name. */
  ownChecks(): Record<string, boolean>;
}

export function probeRoutes(deps: ProbeDeps): Route<RequestContext>[] {
  return [
    { method: '*', path: '/healthz', handle: ({ res }) => json(res, 200, { status: 'ok' }) },
    { method: '*', path: '/metrics', handle: ({ res }) => serveMetrics(deps.metrics, res) },
    {
      method: '*',
      path: '/readyz',
      handle: ({ res }) => {
        const reasons = {
          ...Object.fromEntries(
            Object.entries(deps.ownChecks())
              .filter(([, ok]) => !ok)
              .map(([n]) => [n, 'not yet']),
          ),
          ...deps.readiness.failing(),
        };
        const failing = Object.keys(reasons);
        json(res, failing.length ? 503 : 200, { status: failing.length ? 'not-ready' : 'ready', failing, reasons });
      },
    },
  ];
}
