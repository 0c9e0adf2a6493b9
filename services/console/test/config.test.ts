import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@pitwall/common';
import { parseUsers, readConsoleConfig } from '../src/config.js';

test('CONSOLE_USERS is required and named when missing', () => {
  for (const env of [{}, { CONSOLE_USERS: '' }, { CONSOLE_USERS: '   ' }]) {
    assert.throws(() => readConsoleConfig(env), (err: unknown) => err instanceof ConfigError && err.variable === 'CONSOLE_USERS', JSON.stringify(env));
  }
});

test('malformed CONSOLE_USERS is a ConfigError naming it, without echoing passwords', () => {
  const cases: [string, RegExp][] = [
    ['alice', /name:password/],
    ['alice:', /name:password/],
    [':secret', /name:password/],
    ['alice:pw,,bob', /name:password/],
    ['al ice:pw', /may only contain/],
    ['alice:pw,alice:other', /listed twice/],
    [',', /no user/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => readConsoleConfig({ CONSOLE_USERS: value }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'CONSOLE_USERS' && message.test(err.message) && !err.message.includes('secret'),
      value,
    );
  }
});

test('users parse into name -> password; passwords may contain ":" and spaces', () => {
  const users = parseUsers(' alice:s3cret , bob:a:b c ');
  assert.deepEqual([...users], [
    ['alice', 's3cret'],
    ['bob', 'a:b c'],
  ]);
});

test('defaults and overrides', () => {
  const c = readConsoleConfig({ CONSOLE_USERS: 'alice:pw' });
  assert.equal(c.port, 8080);
  assert.equal(c.healthPort, 8080);
  assert.equal(c.groupIdPrefix, 'pitwall-console');
  assert.equal(c.sessionSecret, undefined);
  assert.equal(c.cookieSecure, false);
  assert.equal(c.kafka.clientId, 'pitwall-console');
  assert.equal(c.topics.incidentCommands, 'maintenance.incident-commands');
  assert.ok(Object.isFrozen(c));
  const d = readConsoleConfig({ CONSOLE_USERS: 'alice:pw', CONSOLE_PORT: '9999', CONSOLE_GROUP_ID_PREFIX: 'x', CONSOLE_SESSION_SECRET: 'a-long-enough-secret', CONSOLE_TELEMETRY_MAX_SCAN: '1000' });
  assert.deepEqual([d.port, d.groupIdPrefix, d.sessionSecret, d.telemetry.maxScan], [9999, 'x', 'a-long-enough-secret', 1000]);
});

test('other bad variables are named too', () => {
  assert.throws(() => readConsoleConfig({ CONSOLE_USERS: 'a:b', CONSOLE_PORT: 'http' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_PORT');
  assert.throws(() => readConsoleConfig({ CONSOLE_USERS: 'a:b', CONSOLE_SESSION_SECRET: 'short' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONSOLE_SESSION_SECRET');
  // Several problems at once name every variable.
  assert.throws(() => readConsoleConfig({ CONSOLE_PORT: '-1' }), (e: unknown) => e instanceof ConfigError && e.variable.includes('CONSOLE_USERS') && e.variable.includes('CONSOLE_PORT'));
});
