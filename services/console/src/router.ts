/**
 * Route tables: the first route whose method and path match a request handles it.
 *
 * A path is matched segment by segment: `/api/incidents/:id` matches `/api/incidents/` plus any one
 * segment (empty too) as `id`; a trailing `*` matches one or more further segments, so
 * `/static/*` is every path starting with `/static/`. Method GET also matches HEAD (node leaves out
 * the body); `*` matches any method. `when` can turn a match down by its parameters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  /** GET or HEAD. */
  isRead: boolean;
}

export type Params = Readonly<Record<string, string>>;

export interface Route<C> {
  method: 'GET' | 'POST' | '*';
  path: string;
  when?: (params: Params) => boolean;
  handle(ctx: C, params: Params): Promise<void> | void;
}

export function requestContext(req: IncomingMessage, res: ServerResponse): RequestContext {
  const method = req.method ?? 'GET';
  return { req, res, url: new URL(req.url ?? '/', 'http://console.invalid'), method, isRead: method === 'GET' || method === 'HEAD' };
}

/** `/a/b` -> ['a', 'b']; `/` -> ['']. */
export function pathSegments(path: string): string[] {
  return path.split('/').slice(1);
}

function matchPath(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (const [i, p] of pattern.entries()) {
    if (p === '*' && i === pattern.length - 1) return segments.length > i ? params : undefined;
    const s = segments[i];
    if (s === undefined) return undefined;
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return undefined;
  }
  return segments.length === pattern.length ? params : undefined;
}

export function matchRoute<C>(routes: readonly Route<C>[], method: string, segments: readonly string[]): { route: Route<C>; params: Params } | undefined {
  for (const route of routes) {
    if (route.method !== '*' && route.method !== method && !(route.method === 'GET' && method === 'HEAD')) continue;
    const params = matchPath(pathSegments(route.path), segments);
    if (params && (!route.when || route.when(params))) return { route, params };
  }
  return undefined;
}
