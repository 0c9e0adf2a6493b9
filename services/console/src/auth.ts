/**
 * Who is asking and may they: sign-in (rate-limited, a few scrypt checks at a time, audited before
 * the cookie is given), the session a request carries and its user's current role, revocations,
 * and the checks every request passes: a session outside the sign-in routes, an allowed Origin (or
 * Referer) for every write (CSRF).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Counters, Logger } from '@pitwall/common';
import { clip, type AuditEntry, type AuditRecord, type AuditTrail, type WriteRecord } from './audit.js';
import { HttpError, formOrJson, json, redirect } from './http.js';
import { METRICS } from './metrics.js';
import { requestOriginAllowed } from './origins.js';
import { verifyPassword, type Role, type Users } from './passwords.js';
import { NO_TRUSTED_PROXIES, clientAddress, isHttps, type TrustedProxies } from './proxy.js';
import { DEFAULT_SIGN_IN_LIMITS, createSignInLimiter, type SignInLimits } from './rate-limit.js';
import type { RequestContext } from './router.js';
import { SESSION_COOKIE, createRevocations, newSession, parseCookies, revocationKey, sessionCookie, signSession, verifySession, type RevocationRecord, type Session } from './session.js';

/** Password checks running at once (32 MiB of scrypt memory each) and waiting at most. */
const VERIFY_CONCURRENCY = 2;
const VERIFY_QUEUE = 64;

/** A signed-in request: its session and the user's role now (not at sign-in). */
export interface Principal {
  session: Session;
  role: Role;
}

/** The context of a route that needs a session. */
export interface SignedIn extends RequestContext {
  principal: Principal;
}

export interface AuthSettings {
  /** Accounts from CONSOLE_USERS (password hashes and roles). */
  users: Users;
  /** HMAC key of session cookies; random per start when undefined. */
  sessionSecret: string | undefined;
  sessionTtlMs: number;
  /** Always mark the cookie Secure (otherwise only for requests that came over HTTPS). */
  cookieSecure: boolean;
  /** Proxies whose X-Forwarded-For/-Proto are believed (default none). */
  trustedProxies?: TrustedProxies;
  /** Origins allowed to send state-changing requests. */
  allowedOrigins: ReadonlySet<string>;
  signInLimits?: SignInLimits;
  /** Revocations are written to (and read back from) `sessions`. */
  consoleTopics: { sessions: string };
}

export interface AuthDeps {
  config: AuthSettings;
  now: () => number;
  log: Logger;
  counters: Counters;
  audit: AuditTrail;
  writeRecord: WriteRecord;
  /** After each revocation: whatever holds sessions (open live streams) drops the revoked ones. */
  onRevoked(isRevoked: (s: Session) => boolean): void;
}

export type Auth = ReturnType<typeof createAuth>;

/** Runs at most `concurrency` calls at once with at most `queue` waiting; past that 503 busy. */
export function createSlots(concurrency: number, queue: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (running < concurrency) running++;
    else if (waiting.length >= queue) throw new HttpError(503, 'busy', 'too many sign-ins at once; try again shortly');
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** Only a local path: never `//host` or a full URL, so sign-in cannot redirect elsewhere. */
export const safeNext = (next: unknown): string => (typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) && !next.startsWith('/login') ? next : '/');

export function createAuth(deps: AuthDeps) {
  const { config, now, log, counters, audit } = deps;
  const secret = config.sessionSecret ?? randomBytes(32);
  const revocations = createRevocations(config.sessionTtlMs);
  const trusted = config.trustedProxies ?? NO_TRUSTED_PROXIES;
  const limiter = createSignInLimiter(config.signInLimits ?? DEFAULT_SIGN_IN_LIMITS, now);
  // Password checks are scrypt runs on the thread pool.
  const verifySlot = createSlots(VERIFY_CONCURRENCY, VERIFY_QUEUE);

  /** The request's session and the user's current role; null when signed out, revoked or no longer a user. */
  const principalOf = (req: IncomingMessage): Principal | null => {
    const s = verifySession(parseCookies(req.headers.cookie)[SESSION_COOKIE], secret, now());
    const user = s ? config.users.get(s.user) : undefined;
    return s && user && !revocations.isRevoked(s, now()) ? { session: s, role: user.role } : null;
  };

  const clientOf = (req: IncomingMessage): AuditRecord['client'] => ({
    address: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted),
    user_agent: clip(req.headers['user-agent'], 256),
  });

  /** Secure cookie: always when configured, else when the browser reached us over HTTPS. */
  const secureFor = (req: IncomingMessage): boolean =>
    config.cookieSecure || isHttps(Boolean((req.socket as TLSSocket).encrypted), req.socket.remoteAddress, req.headers['x-forwarded-proto'], trusted);

  /** True (and 403 sent) when the Origin (or Referer) is not an allowed one. */
  const refuseOrigin = (req: IncomingMessage, res: ServerResponse, message = 'the Origin header must be an allowed origin of this console'): boolean => {
    if (requestOriginAllowed(req.headers.origin, req.headers.referer, config.allowedOrigins)) return false;
    counters.inc(METRICS.requestsRefused, 1, 'bad-origin');
    json(res, 403, { error: 'bad_origin', message });
    return true;
  };

  const applyRevocation = (r: RevocationRecord): void => {
    revocations.apply(r);
    deps.onRevoked((s) => revocations.isRevoked(s, now()));
  };

  const signIn = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const wantsJson = (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');
    const fail = (status: number, code: string, message: string, next: string, headers: Record<string, string> = {}): void => {
      if (wantsJson) json(res, status, { error: code, message }, headers);
      else redirect(res, `/login?error=${code}${next !== '/' ? `&next=${encodeURIComponent(next)}` : ''}`, headers);
    };
    if (refuseOrigin(req, res)) return;
    const body = await formOrJson(req);
    const next = safeNext(body.next);
    const client = clientOf(req);
    const user = typeof body.user === 'string' ? body.user.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const typed = clip(user, 64) ?? '';
    const limitKey = user.slice(0, 128);
    const limit = limiter.check(client.address, limitKey);
    if (!limit.allowed) {
      counters.inc(METRICS.signInsRefused, 1, 'rate-limited');
      log.warn('sign-in rate-limited', { user: typed, client: client.address, scope: limit.scope });
      if (limit.first) await audit.quietly({ user: typed, role: null, action: 'sign-in', outcome: 'rate-limited', client, session: null });
      return fail(429, 'rate_limited', 'too many failed sign-ins; wait a minute', next, { 'retry-after': String(Math.ceil(limit.retryAfterMs / 1000)) });
    }
    let entry;
    try {
      entry = await verifySlot(() => verifyPassword(config.users, user, password));
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, err.code, err.message, next, { 'retry-after': '2' });
      throw err;
    }
    if (!entry) {
      limiter.failed(client.address, limitKey);
      counters.inc(METRICS.signInsRefused, 1, 'bad-credentials');
      log.warn('sign-in refused', { user: typed, client: client.address });
      await audit.quietly({ user: typed, role: null, action: 'sign-in', outcome: 'bad-credentials', client, session: null });
      return fail(401, 'bad_credentials', 'unknown user or wrong password', next);
    }
    limiter.succeeded(client.address, limitKey);
    const session = newSession(entry.name, now(), config.sessionTtlMs);
    try {
      // No record, no session.
      await audit.record({ user: entry.name, role: entry.role, action: 'sign-in', outcome: 'ok', client, session: session.sid });
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, 'unavailable', err.message, next, { 'retry-after': '5' });
      throw err;
    }
    const cookie = sessionCookie(signSession(session, secret), { maxAgeS: Math.floor(config.sessionTtlMs / 1000), secure: secureFor(req) });
    counters.inc(METRICS.signIns);
    log.info('signed in', { user: entry.name, role: entry.role, client: client.address });
    if (wantsJson) json(res, 200, { user: entry.name, role: entry.role }, { 'set-cookie': cookie });
    else redirect(res, next, { 'set-cookie': cookie });
  };

  return {
    principalOf,
    clientOf,
    secureFor,
    refuseOrigin,
    signIn,
    /** A revocation read back from the sessions topic. */
    applyRevocation,
    /** Revoked here at once, and for every replica (and restart) once the record is in Kafka. */
    async publishRevocation(r: RevocationRecord): Promise<void> {
      applyRevocation(r);
      await deps.writeRecord(config.consoleTopics.sessions, revocationKey(r), r);
      log.info('sessions revoked', { ...r });
    },

    /**
     * The checks before every route but the probes, static files and sign-in: the principal, or
     * undefined with the refusal sent (401 JSON for the API and for writes, else a redirect to
     * sign-in; 403 for a write from a foreign origin).
     */
    admit(ctx: RequestContext, isApi: boolean): Principal | undefined {
      const { req, res, url, isRead } = ctx;
      const principal = principalOf(req);
      if (!principal) {
        counters.inc(METRICS.requestsRefused, 1, 'unauthenticated');
        if (isApi || !isRead) json(res, 401, { error: 'unauthenticated', message: 'sign in first (POST /login)' });
        else redirect(res, `/login${url.pathname === '/' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`}`);
        return undefined;
      }
      if (!isRead && refuseOrigin(req, res, 'cross-origin or Origin-less writes are refused')) return undefined;
      return principal;
    },

    /** A role refused: 403, counted and audited. */
    async forbid(res: ServerResponse, entry: AuditEntry & { outcome: 'forbidden' }, message: string): Promise<void> {
      counters.inc(METRICS.requestsRefused, 1, 'forbidden');
      await audit.quietly(entry);
      json(res, 403, { error: 'forbidden', message });
    },
  };
}
