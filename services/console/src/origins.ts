/**
 * CSRF check for state-changing requests (POST and every other non-GET/HEAD method): the request's
 * Origin, or when a browser sent none its Referer, must be one of the configured origins
 * (CONSOLE_ALLOWED_ORIGINS). The request's own Host header plays no part: a DNS-rebinding page or a
 * proxy passing any Host cannot make its origin "this console". A request with neither header is
 * refused too (a script outside a browser can send whatever headers it likes, but then it also
 * needs a session cookie, or the password).
 */

/** `scheme://host[:port]` of a URL, lower-cased with the default port dropped; undefined when not http(s). */
export function originOf(text: string): string | undefined {
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/** CONSOLE_ALLOWED_ORIGINS items -> a set of origins. Throws a RangeError naming a bad item. */
export function parseAllowedOrigins(items: readonly string[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const raw of items) {
    const item = raw.trim();
    if (item === '') continue;
    const origin = originOf(item);
    // An origin has no path, query or credentials: "https://console.example.com" or "http://10.0.0.5:8080".
    if (!origin || !/^https?:\/\/[^/?#@]+\/?$/i.test(item)) throw new RangeError(`"${item}" is not an origin (scheme://host[:port])`);
    out.add(origin);
  }
  return out;
}

/** The demo's origins: the console's port on loopback under its usual names. */
export function defaultAllowedOrigins(port: number): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
}

export function requestOriginAllowed(origin: string | undefined, referer: string | undefined, allowed: ReadonlySet<string>): boolean {
  const source = origin ?? referer;
  if (!source || source === 'null') return false;
  const o = originOf(source);
  return o !== undefined && allowed.has(o);
}
