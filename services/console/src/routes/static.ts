/**
 * Files and pages. /static/, /vendor/ and /favicon.svg need no session (the sign-in page uses
 * them); the app itself (/ and /vehicles/<id>, one page routed in the browser) does.
 */
import type { SignedIn } from '../auth.js';
import { notFoundText } from '../http.js';
import type { RequestContext, Route } from '../router.js';
import type { StaticFiles } from '../static.js';

export function fileRoutes(files: StaticFiles): Route<RequestContext>[] {
  const serve = (ctx: RequestContext, key: string): void => {
    if (!files.serve(ctx.req, ctx.res, key)) notFoundText(ctx.res);
  };
  return [
    { method: 'GET', path: '/static/*', handle: (ctx) => serve(ctx, ctx.url.pathname) },
    { method: 'GET', path: '/vendor/*', handle: (ctx) => serve(ctx, ctx.url.pathname) },
    { method: 'GET', path: '/favicon.svg', handle: (ctx) => serve(ctx, '/static/favicon.svg') },
  ];
}

export function pageRoutes(files: StaticFiles): Route<SignedIn>[] {
  const app = ({ req, res }: SignedIn): void => {
    files.serve(req, res, '/static/app.html', { 'cache-control': 'no-store' });
  };
  return [
    { method: 'GET', path: '/', handle: app },
    { method: 'GET', path: '/vehicles/:vehicle', when: ({ vehicle }) => vehicle !== '', handle: app },
  ];
}
