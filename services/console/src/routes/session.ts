/**
 * Signing in and out, and sessions:
 *   GET /login (the page; signed in already: on to ?next), POST /login (form or JSON), POST /logout
 *   GET /api/me                  the user, role, what the role may do, and when the session ends
 *   POST /api/sessions/revoke    JSON {user?}: every session of a user (admin; anyone for themselves)
 */
import type { Logger } from '@pitwall/common';
import { clip, type AuditTrail } from '../audit.js';
import { safeNext, type Auth, type SignedIn } from '../auth.js';
import { HttpError, formOrJson, json, redirect } from '../http.js';
import { can, type Users } from '../passwords.js';
import type { RequestContext, Route } from '../router.js';
import { clearedSessionCookie } from '../session.js';
import type { StaticFiles } from '../static.js';

export interface SessionRouteDeps {
  auth: Auth;
  audit: AuditTrail;
  files: StaticFiles;
  users: Users;
  now: () => number;
  log: Logger;
}

export function signInRoutes(deps: SessionRouteDeps): Route<RequestContext>[] {
  const { auth, audit, now, log } = deps;
  return [
    { method: 'POST', path: '/login', handle: ({ req, res }) => auth.signIn(req, res) },
    {
      method: 'GET',
      path: '/login',
      handle: ({ req, res, url }) => {
        if (auth.principalOf(req)) return redirect(res, safeNext(url.searchParams.get('next')));
        deps.files.serve(req, res, '/static/login.html', { 'cache-control': 'no-store' });
      },
    },
    {
      method: '*',
      path: '/login',
      handle: () => {
        throw new HttpError(405, 'method_not_allowed', 'GET or POST');
      },
    },
    {
      method: 'POST',
      path: '/logout',
      handle: async ({ req, res }) => {
        if (auth.refuseOrigin(req, res)) return;
        const principal = auth.principalOf(req);
        if (principal) {
          const { session: s, role } = principal;
          await auth.publishRevocation({ type: 'session', sid: s.sid, user: s.user, exp: s.exp, at: now(), by: s.user });
          await audit.quietly({ user: s.user, role, action: 'sign-out', outcome: 'ok', client: auth.clientOf(req), session: s.sid });
          log.info('signed out', { user: s.user });
        }
        redirect(res, '/login?signed_out=1', { 'set-cookie': clearedSessionCookie(auth.secureFor(req)) });
      },
    },
    {
      method: '*',
      path: '/logout',
      handle: () => {
        throw new HttpError(405, 'method_not_allowed', 'sign out with POST');
      },
    },
  ];
}

export function sessionApiRoutes(deps: SessionRouteDeps): Route<SignedIn>[] {
  const { auth, audit, now } = deps;
  return [
    {
      method: 'GET',
      path: '/api/me',
      handle: ({ res, principal: { session, role } }) =>
        json(res, 200, { user: session.user, role, can: { act: can(role, 'act'), revoke_others: can(role, 'revokeOthers') }, expires_at: session.exp }),
    },
    {
      method: 'POST',
      path: '/api/sessions/revoke',
      handle: async ({ req, res, principal: { session, role } }) => {
        const body = await formOrJson(req);
        if (body.user !== undefined && typeof body.user !== 'string') throw new HttpError(400, 'bad_request', 'user must be a string');
        const target = typeof body.user === 'string' && body.user.trim() !== '' ? body.user.trim() : session.user;
        const client = auth.clientOf(req);
        if (target !== session.user && !can(role, 'revokeOthers')) {
          const entry = { user: session.user, role, action: 'revoke-sessions', outcome: 'forbidden', client, session: session.sid, target_user: clip(target, 64) ?? '' } as const;
          return auth.forbid(res, entry, `the ${role} role may only revoke its own sessions (admin for others)`);
        }
        if (!deps.users.has(target)) throw new HttpError(404, 'not_found', `no user ${clip(target, 64)}`);
        const before = now();
        await auth.publishRevocation({ type: 'user', user: target, before, at: before, by: session.user });
        await audit.record({ user: session.user, role, action: 'revoke-sessions', outcome: 'ok', client, session: session.sid, target_user: target });
        const self = target === session.user;
        json(res, 200, { user: target, revoked_before: before }, self ? { 'set-cookie': clearedSessionCookie(auth.secureFor(req)) } : {});
      },
    },
  ];
}
