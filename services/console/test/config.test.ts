import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@pitwall/common';
import { readConsoleConfig } from '../src/config.js';
import { makeUserEntry } from '../src/passwords.js';

let USERS = '';
before(async () => {
  USERS = [await makeUserEntry('alice', 'operator', 'alice-password', { N: 2 ** 14, r: 8, p: 1 }), await makeUserEntry('vic', 'viewer', 'vic-password', { N: 2 ** 14, r: 8, p: 1 })].join(',');
});

test('CONSOLE_USERS is required and named when missing', () => {
  for (const env of [{}, { CONSOLE_USERS: '' }, { CONSOLE_USERS: '   ' }]) {
    assert.throws(
      () => readConsoleConfig(env),
      (err: unknown) => err instanceof ConfigError && err.variable === 'CONSOLE_USERS',
      JSON.stringify(env),
    );
  }
});

test('plain-text passwords in CONSOLE_USERS stop the start, naming the variable and the command that makes a hash', () => {
  for (const value of ['alice:secret', 'alice:operator:secret', `${'x'}:pw,bob:builder`]) {
    assert.throws(
      () => readConsoleConfig({ CONSOLE_USERS: value }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.variable === 'CONSOLE_USERS' &&
        /never passwords/.test(err.message) &&
        /npm run console-user -- <name> <role>/.test(err.message) &&
        !/secret|builder/.test(err.message),
      value,
    );
  }
});

test('users parse into name -> role and hash', () => {
  const c = readConsoleConfig({ CONSOLE_USERS: USERS });
  assert.deepEqual(
    [...c.users.values()].map((u) => [u.name, u.role, u.hash.N]),
    [
      ['alice', 'operator', 16384],
      ['vic', 'viewer', 16384],
    ],
  );
});

test('defaults and overrides', () => {
  const c = readConsoleConfig({ CONSOLE_USERS: USERS });
  assert.equal(c.port, 8080);
  assert.equal(c.healthPort, 8080);
  assert.equal(c.groupIdPrefix, 'pitwall-console');
  assert.equal(c.sessionSecret, undefined);
  assert.equal(c.cookieSecure, false);
  assert.equal(c.kafka.clientId, 'pitwall-console');
  assert.equal(c.topics.incidentCommands, 'maintenance.incident-commands');
  assert.deepEqual(c.consoleTopics, { sessions: 'console.sessions', audit: 'console.audit' });
  assert.deepEqual([...c.allowedOrigins], ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']);
  assert.equal(c.trustedProxies.size, 0);
  assert.equal(c.trustedProxies.has('127.0.0.1'), false);
  assert.ok(Object.isFrozen(c));
  const d = readConsoleConfig({
    CONSOLE_USERS: USERS,
    CONSOLE_PORT: '9999',
    CONSOLE_GROUP_ID_PREFIX: 'x',
    CONSOLE_SESSION_SECRET: 'a-long-enough-secret',
    CONSOLE_TELEMETRY_MAX_SCAN: '1000',
    CONSOLE_COOKIE_SECURE: 'true',
    CONSOLE_TRUSTED_PROXIES: '10.0.0.0/8, ::1',
    TOPIC_CONSOLE_SESSIONS: 's',
    TOPIC_CONSOLE_AUDIT: 'a',
  });
  assert.deepEqual([d.port, d.groupIdPrefix, d.sessionSecret, d.telemetry.maxScan, d.cookieSecure], [9999, 'x', 'a-long-enough-secret', 1000, true]);
  assert.deepEqual([...d.allowedOrigins], ['http://127.0.0.1:9999', 'http://localhost:9999', 'http://[::1]:9999'], 'the default follows CONSOLE_PORT');
  assert.deepEqual([d.trustedProxies.has('10.2.3.4'), d.trustedProxies.has('::1'), d.trustedProxies.has('11.0.0.1')], [true, true, false]);
  assert.deepEqual(d.consoleTopics, { sessions: 's', audit: 'a' });
  const e = readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_ALLOWED_ORIGINS: 'https://console.example.com' });
  assert.deepEqual([...e.allowedOrigins], ['https://console.example.com']);
});

test('other bad variables are named too', () => {
  assert.throws(
    () => readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_PORT: 'http' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_PORT',
  );
  assert.throws(
    () => readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_SESSION_SECRET: 'short' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_SESSION_SECRET',
  );
  assert.throws(
    () => readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_TRUSTED_PROXIES: '10.0.0.0/8,proxy.local' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_TRUSTED_PROXIES' && /proxy\.local/.test(e.message),
  );
  assert.throws(
    () => readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_ALLOWED_ORIGINS: 'console.example.com' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_ALLOWED_ORIGINS',
  );
  assert.throws(
    () => readConsoleConfig({ CONSOLE_USERS: USERS, CONSOLE_COOKIE_SECURE: 'maybe' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_COOKIE_SECURE',
  );
  // Several problems at once name every variable.
  assert.throws(
    () => readConsoleConfig({ CONSOLE_PORT: '-1' }),
    (e: unknown) => e instanceof ConfigError && e.variable.includes('CONSOLE_USERS') && e.variable.includes('CONSOLE_PORT'),
  );
});
