/**
 * Sign-in and sessions. A session is a cookie value `<payload>.<mac>`: payload = base64url of
 * JSON {u: user, sid, iat, exp} (epoch ms), mac = base64url HMAC-SHA256(payload) with the session
 * secret. Nothing is stored server-side except the ids of sessions signed out before they expire.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'pitwall_session';

export interface Session {
  user: string;
  sid: string;
  iat: number;
  exp: number;
}

export function signSession(session: Session, secret: string | Buffer): string {
  const payload = Buffer.from(JSON.stringify({ u: session.user, sid: session.sid, iat: session.iat, exp: session.exp })).toString('base64url');
  return `${payload}.${mac(payload, secret)}`;
}

/** The session a token carries, or null when it is malformed, forged or expired at `now`. */
export function verifySession(token: string | undefined, secret: string | Buffer, now: number): Session | null {
  if (!token) return null;
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) return null;
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = Buffer.from(mac(payload, secret), 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const p = parsed as { u?: unknown; sid?: unknown; iat?: unknown; exp?: unknown };
  if (typeof p.u !== 'string' || typeof p.sid !== 'string' || typeof p.iat !== 'number' || typeof p.exp !== 'number') return null;
  if (now >= p.exp) return null;
  return { user: p.u, sid: p.sid, iat: p.iat, exp: p.exp };
}

function mac(payload: string, secret: string | Buffer): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export function newSession(user: string, now: number, ttlMs: number): Session {
  return { user, sid: randomBytes(12).toString('base64url'), iat: now, exp: now + ttlMs };
}

/**
 * Constant-time check of a name/password pair. Both sides are hashed first so the comparison has
 * a fixed length, and an unknown user costs the same as a wrong password.
 */
export function checkPassword(users: ReadonlyMap<string, string>, name: string, password: string): boolean {
  const known = users.get(name);
  const a = createHash('sha256').update(password, 'utf8').digest();
  const b = createHash('sha256').update(known ?? `\u0000unknown-user\u0000${password}x`, 'utf8').digest();
  return timingSafeEqual(a, b) && known !== undefined;
}

/** Ids of sessions signed out before they expire, forgotten once expired. */
export function createRevocations() {
  const revoked = new Map<string, number>();
  return {
    revoke(s: Session): void {
      revoked.set(s.sid, s.exp);
    },
    isRevoked(s: Session, now: number): boolean {
      for (const [sid, exp] of revoked) if (exp <= now) revoked.delete(sid);
      return revoked.has(s.sid);
    },
  };
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of (header ?? '').split(';')) {
    const part = raw.trim();
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    try {
      out[k] = decodeURIComponent(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

export function sessionCookie(token: string, opts: { maxAgeS: number; secure: boolean }): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${opts.maxAgeS}${opts.secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/**
 * CSRF check for state-changing requests: the Origin header must name this very host. Browsers
 * send Origin on every cross-site POST, and on same-origin POSTs too; a request without one is
 * refused as well (a script outside a browser can send the header it likes, but then it also
 * needs a session cookie).
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host || origin === 'null') return false;
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
