/**
 * Sign-in throttling that nobody can turn against somebody else. Failed sign-ins are counted per
 * (client address, user name) and per client address, in a sliding window; never per user name
 * alone, so an attacker who hammers "alice" from one address locks out only that address, and
 * alice signs in from hers. The client address is the one proxy.ts derives (the real client
 * behind a trusted proxy). A correct password resets the (address, user) count, not the
 * address's, so a valid account cannot launder an address's guesses.
 */

export interface SignInLimits {
  windowMs: number;
  /** Failures allowed per (address, user name) in the window. */
  perAddressAndUser: number;
  /** Failures allowed per address in the window, whatever the user names. */
  perAddress: number;
  /** Most keys kept; the oldest are dropped beyond this (memory bound). */
  maxKeys: number;
}

export const DEFAULT_SIGN_IN_LIMITS: Readonly<SignInLimits> = Object.freeze({ windowMs: 60_000, perAddressAndUser: 10, perAddress: 50, maxKeys: 20_000 });

export type LimitDecision =
  | { allowed: true }
  /** `first`: the first refusal of this key in the current window (worth an audit record). */
  | { allowed: false; scope: 'address' | 'address-user'; retryAfterMs: number; first: boolean };

export interface SignInLimiter {
  check(address: string, user: string): LimitDecision;
  failed(address: string, user: string): void;
  succeeded(address: string, user: string): void;
  size(): number;
}

export function createSignInLimiter(limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS, now: () => number = Date.now): SignInLimiter {
  // Key -> failure times (oldest first), at most `limit` of them; and whether a refusal was reported.
  const failures = new Map<string, { times: number[]; reported: boolean }>();
  const pairKey = (address: string, user: string): string => `${address}\u0000${user}`;
  const addrKey = (address: string): string => `${address}\u0000`;

  const recent = (key: string, t: number): { times: number[]; reported: boolean } | undefined => {
    const e = failures.get(key);
    if (!e) return undefined;
    while (e.times.length > 0 && t - e.times[0]! >= limits.windowMs) {
      e.times.shift();
      e.reported = false;
    }
    if (e.times.length === 0) {
      failures.delete(key);
      return undefined;
    }
    return e;
  };

  const add = (key: string, limit: number, t: number): void => {
    const e = recent(key, t) ?? { times: [], reported: false };
    e.times.push(t);
    if (e.times.length > limit) e.times.splice(0, e.times.length - limit);
    failures.delete(key); // re-insert: Map order is then least recently failed first
    failures.set(key, e);
    while (failures.size > limits.maxKeys) failures.delete(failures.keys().next().value as string);
  };

  return {
    check(address, user) {
      const t = now();
      for (const [key, limit, scope] of [
        [addrKey(address), limits.perAddress, 'address'],
        [pairKey(address, user), limits.perAddressAndUser, 'address-user'],
      ] as const) {
        const e = recent(key, t);
        if (e && e.times.length >= limit) {
          const first = !e.reported;
          e.reported = true;
          return { allowed: false, scope, retryAfterMs: Math.max(0, e.times[0]! + limits.windowMs - t), first };
        }
      }
      return { allowed: true };
    },
    failed(address, user) {
      const t = now();
      add(addrKey(address), limits.perAddress, t);
      add(pairKey(address, user), limits.perAddressAndUser, t);
    },
    succeeded(address, user) {
      failures.delete(pairKey(address, user));
    },
    size: () => failures.size,
  };
}
