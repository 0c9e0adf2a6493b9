/**
 * Sign-in and sessions. A session is a cookie value `<payload>.<mac>`: payload = base64url of
 * JSON {u: user, sid, iat, exp} (epoch ms; sid: 16 random bytes), mac = base64url HMAC-SHA256(payload)
 * with the session secret. Nothing is stored server-side except revocations: sessions signed out
 * before they expire, and users whose sessions an admin revoked. Revocations are written to a
 * compacted Kafka topic that every replica reads from its beginning at start and then follows.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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
  return { user, sid: randomBytes(16).toString('base64url'), iat: now, exp: now + ttlMs };
}

/** A revocation as written to the sessions topic (TOPIC_CONSOLE_SESSIONS, JSON values). */
export type RevocationRecord =
  /** One session signed out (key: the session id). */
  | { type: 'session'; sid: string; user: string; exp: number; at: number; by: string }
  /** Every session of `user` issued at or before `before` (key: `user:<name>`). */
  | { type: 'user'; user: string; before: number; at: number; by: string };

export function revocationKey(r: RevocationRecord): string {
  return r.type === 'session' ? r.sid : `user:${r.user}`;
}

/** A record read back from the topic, or null when it is not one. */
export function parseRevocation(value: Buffer | string | null): RevocationRecord | null {
  if (value === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(value.toString());
  } catch {
    return null;
  }
  const r = v as Record<string, unknown>;
  if (!r || typeof r !== 'object' || typeof r.user !== 'string' || typeof r.at !== 'number') return null;
  const by = typeof r.by === 'string' ? r.by : '';
  if (r.type === 'session' && typeof r.sid === 'string' && r.sid !== '' && typeof r.exp === 'number') return { type: 'session', sid: r.sid, user: r.user, exp: r.exp, at: r.at, by };
  if (r.type === 'user' && typeof r.before === 'number') return { type: 'user', user: r.user, before: r.before, at: r.at, by };
  return null;
}

/**
 * Revoked sessions: single sessions by id (forgotten once expired) and whole users up to a time
 * (forgotten once every session issued by then has expired, `ttlMs` later).
 */
export function createRevocations(ttlMs = 30 * 86_400_000) {
  const sessions = new Map<string, number>();
  const users = new Map<string, number>();
  let prunedAt = -Infinity;
  const prune = (now: number): void => {
    if (now - prunedAt < 1000) return;
    prunedAt = now;
    for (const [sid, exp] of sessions) if (exp <= now) sessions.delete(sid);
    for (const [user, before] of users) if (before + ttlMs <= now) users.delete(user);
  };
  const revokeUser = (user: string, before: number): void => void users.set(user, Math.max(before, users.get(user) ?? -Infinity));
  return {
    revoke(s: Session): void {
      sessions.set(s.sid, s.exp);
    },
    revokeUser,
    apply(r: RevocationRecord): void {
      if (r.type === 'session') sessions.set(r.sid, Math.max(r.exp, sessions.get(r.sid) ?? -Infinity));
      else revokeUser(r.user, r.before);
    },
    isRevoked(s: Session, now: number): boolean {
      prune(now);
      const before = users.get(s.user);
      return sessions.has(s.sid) || (before !== undefined && s.iat <= before);
    },
    size: () => sessions.size + users.size,
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
