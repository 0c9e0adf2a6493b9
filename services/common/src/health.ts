/**
 * Liveness and readiness over HTTP for Kubernetes probes:
 *   GET /healthz  200 while the process's loop is alive
 *   GET /readyz   200 when every readiness check passes, else 503 with the failing ones (and why,
 *                 when the checks are a Readiness tracker's report)
 *   GET /metrics  the service's metrics registry in the Prometheus text format (when given one)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { serveMetrics } from './metrics.js';

export type ReadinessCheck = () => boolean;
/** Failing checks by name, with why (a Readiness tracker's `failing`). */
export type ReadinessReport = () => Record<string, string>;

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  /** Default 0.0.0.0. */
  host?: string;
  /** Served on GET /metrics (404 without). */
  metrics?: Registry;
}

export function startHealthServer(port: number, checks: Record<string, ReadinessCheck> | ReadinessReport, options: string | HealthServerOptions = {}): Promise<HealthServer> {
  const { host = '0.0.0.0', metrics } = typeof options === 'string' ? { host: options } : options;
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics' && metrics) {
      serveMetrics(metrics, res);
      return;
    }
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.url === '/readyz') {
      const report = typeof checks === 'function';
      const reasons = report ? checks() : Object.fromEntries(Object.entries(checks).flatMap(([name, check]) => (check() ? [] : [[name, 'failing']])));
      const failing = Object.keys(reasons);
      res
        .writeHead(failing.length ? 503 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: failing.length ? 'not-ready' : 'ready', failing, ...(report ? { reasons } : {}) }));
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
