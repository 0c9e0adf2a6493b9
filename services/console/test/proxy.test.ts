import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress, isHttps, NO_TRUSTED_PROXIES, parseTrustedProxies } from '../src/proxy.js';

const proxies = parseTrustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1']);

test('trusted proxies: IPs and CIDRs, IPv4-mapped IPv6 included', () => {
  const cases: [string, boolean][] = [
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['11.1.2.3', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['fd12::1', true],
    ['fe80::1', false],
    ['::1', true],
    ['127.0.0.1', false],
    ['not-an-ip', false],
    ['', false],
  ];
  for (const [addr, trusted] of cases) assert.equal(proxies.has(addr), trusted, addr);
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0', '::1/129', '1.2.3.4/x']) assert.throws(() => parseTrustedProxies([bad]), RangeError, bad);
});

test('client address: X-Forwarded-For only from a trusted peer, right-most untrusted hop', () => {
  const cases: [string, string | undefined, string | string[] | undefined, string][] = [
    // [what, peer, X-Forwarded-For, client]
    ['no proxy, no header', '203.0.113.5', undefined, '203.0.113.5'],
    ['untrusted peer: the header is ignored', '203.0.113.5', '198.51.100.1', '203.0.113.5'],
    ['untrusted peer spoofing a trusted one', '203.0.113.5', '10.0.0.1', '203.0.113.5'],
    ['trusted peer, no header: the proxy itself', '10.0.0.2', undefined, '10.0.0.2'],
    ['trusted peer, one hop', '10.0.0.2', '198.51.100.1', '198.51.100.1'],
    ['client-chosen entries left of the real one are ignored', '10.0.0.2', '1.1.1.1, 6.6.6.6, 198.51.100.1', '198.51.100.1'],
    ['two trusted proxies in a chain', '10.0.0.2', '198.51.100.1, 192.168.1.7', '198.51.100.1'],
    ['several header lines', '10.0.0.2', ['6.6.6.6', '198.51.100.1, 10.9.9.9'], '198.51.100.1'],
    ['all hops trusted: the left-most', '10.0.0.2', '10.0.0.9, 10.0.0.8', '10.0.0.9'],
    ['garbage from the proxy: the last good hop', '10.0.0.2', 'evil, not-an-ip', '10.0.0.2'],
    ['garbage left of the real hop does not matter', '10.0.0.2', 'not-an-ip, 198.51.100.1', '198.51.100.1'],
    ['ports and brackets', '10.0.0.2', '198.51.100.1:4711', '198.51.100.1'],
    ['IPv6 with port', '10.0.0.2', '[2001:db8::7]:4711', '2001:db8::7'],
    ['IPv4-mapped peer and hop', '::ffff:10.0.0.2', '::ffff:198.51.100.1', '198.51.100.1'],
    ['IPv6 loopback proxy', '::1', '2001:db8::7', '2001:db8::7'],
    ['no peer', undefined, '198.51.100.1', 'unknown'],
  ];
  for (const [what, peer, xff, client] of cases) assert.equal(clientAddress(peer, xff, proxies), client, what);
  // Without configured proxies nothing is ever believed.
  assert.equal(clientAddress('10.0.0.2', '198.51.100.1', NO_TRUSTED_PROXIES), '10.0.0.2');
});

test('HTTPS: over TLS, or X-Forwarded-Proto: https from a trusted proxy', () => {
  const cases: [string, boolean, string, string | string[] | undefined, boolean][] = [
    ['TLS socket', true, '203.0.113.5', undefined, true],
    ['plain, no header', false, '10.0.0.2', undefined, false],
    ['trusted proxy says https', false, '10.0.0.2', 'https', true],
    ['trusted proxy says HTTPS', false, '10.0.0.2', 'HTTPS', true],
    ['trusted proxy says http', false, '10.0.0.2', 'http', false],
    ['the client wrote https, the proxy appended http', false, '10.0.0.2', 'https, http', false],
    ['untrusted peer says https', false, '203.0.113.5', 'https', false],
  ];
  for (const [what, tls, peer, proto, https] of cases) assert.equal(isHttps(tls, peer, proto, proxies), https, what);
});
