import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultAllowedOrigins, parseAllowedOrigins, requestOriginAllowed } from '../src/origins.js';

test('allowed origins: normalized, and only origins', () => {
  const set = parseAllowedOrigins(['https://Console.Example.com', 'http://10.0.0.5:8080/', 'https://ops.example:443']);
  assert.deepEqual([...set], ['https://console.example.com', 'http://10.0.0.5:8080', 'https://ops.example']);
  for (const bad of ['console.example.com', 'ftp://console.example', 'https://console.example/app', 'https://u:p@console.example', 'https://console.example?x=1']) {
    assert.throws(() => parseAllowedOrigins([bad]), RangeError, bad);
  }
  assert.deepEqual(defaultAllowedOrigins(8080), ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']);
});

test('a state-changing request needs an Origin, else a Referer, from the list; the Host header plays no part', () => {
  const allowed = parseAllowedOrigins(['https://console.example.com', ...defaultAllowedOrigins(8080)]);
  const cases: [string | undefined, string | undefined, boolean][] = [
    ['https://console.example.com', undefined, true],
    ['https://CONSOLE.example.com:443', undefined, true],
    ['http://console.example.com', undefined, false],
    ['https://console.example.com:8443', undefined, false],
    ['http://localhost:8080', undefined, true],
    ['http://127.0.0.1:8080', undefined, true],
    ['http://127.0.0.1:8081', undefined, false],
    ['http://evil.example', undefined, false],
    ['http://evil.example', 'https://console.example.com/vehicles/x', false],
    ['null', undefined, false],
    [undefined, 'https://console.example.com/vehicles/car-1?incident=x', true],
    [undefined, 'https://evil.example/https://console.example.com/', false],
    [undefined, 'not a url', false],
    [undefined, undefined, false],
  ];
  for (const [origin, referer, ok] of cases) assert.equal(requestOriginAllowed(origin, referer, allowed), ok, `${origin} / ${referer}`);
});
