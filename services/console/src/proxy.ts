/**
 * Who is asking, and over what: the client address and whether the request reached the console
 * over HTTPS, trusting forwarding headers only from configured proxies (CONSOLE_TRUSTED_PROXIES).
 *
 * The client address is the socket's peer unless that peer is a trusted proxy. Then
 * X-Forwarded-For is walked from the right (each proxy appends the address it received the
 * request from) and the first address that is not a trusted proxy is the client: everything left
 * of it was written by the client itself and is never believed. X-Forwarded-Proto is believed
 * from a trusted peer only.
 */
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  has(address: string): boolean;
  readonly size: number;
}

/** An IPv4-mapped IPv6 address (::ffff:10.0.0.1) as the IPv4 address; other text as it is. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  return mapped ? mapped[1]! : a.toLowerCase();
}

/** A list of IPs and CIDRs ("10.0.0.0/8", "::1", "fd00::/8"). Throws a RangeError naming a bad item. */
export function parseTrustedProxies(items: readonly string[]): TrustedProxies {
  const list = new BlockList();
  let size = 0;
  for (const raw of items) {
    const item = raw.trim();
    if (item === '') continue;
    const slash = item.indexOf('/');
    const address = normalizeAddress(slash >= 0 ? item.slice(0, slash) : item);
    const family = isIP(address);
    if (family === 0) throw new RangeError(`"${item}" is not an IP address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash >= 0) {
      const prefixText = item.slice(slash + 1);
      const prefix = Number(prefixText);
      if (!/^\d{1,3}$/.test(prefixText) || prefix > (family === 4 ? 32 : 128)) throw new RangeError(`"${item}" has a bad prefix length`);
      list.addSubnet(address, prefix, type);
    } else {
      list.addAddress(address, type);
    }
    size++;
  }
  return {
    size,
    has(addr: string): boolean {
      const a = normalizeAddress(addr);
      const family = isIP(a);
      return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

export const NO_TRUSTED_PROXIES: TrustedProxies = Object.freeze({ size: 0, has: () => false });

/** One X-Forwarded-For item as an address: drops a port ("1.2.3.4:80", "[::1]:80"); "" when it is none. */
function hopAddress(item: string): string {
  let s = item.trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) s = bracket[1]!;
  else if (/^\d{1,3}(?:\.\d{1,3}){3}:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(':'));
  s = normalizeAddress(s);
  return isIP(s) ? s : '';
}

const headerValues = (h: string | string[] | undefined): string[] => (h === undefined ? [] : Array.isArray(h) ? h : [h]).flatMap((v) => v.split(','));

/**
 * The client's address. `peer` is the socket's remote address; `forwardedFor` the
 * X-Forwarded-For header(s). Without a trusted peer the header is ignored.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  let current = normalizeAddress(peer ?? '');
  if (current === '' || !trusted.has(current)) return current || 'unknown';
  const hops = headerValues(forwardedFor);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hopAddress(hops[i]!);
    // Garbage from a trusted proxy: stop at the last address known to be right.
    if (hop === '') return current;
    current = hop;
    if (!trusted.has(hop)) return hop;
  }
  // Every hop is a trusted proxy: the left-most one is the nearest thing to a client.
  return current;
}

/** Whether the request reached the console (or the trusted proxy in front of it) over HTTPS. */
export function isHttps(encrypted: boolean, peer: string | undefined, forwardedProto: string | string[] | undefined, trusted: TrustedProxies): boolean {
  if (encrypted) return true;
  if (!trusted.has(peer ?? '')) return false;
  // The right-most value was set by the proxy that talks to us.
  const last = headerValues(forwardedProto).at(-1)?.trim().toLowerCase();
  return last === 'https';
}
