import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@pitwall/common';
import { readWindowingConfig } from '../src/config.js';

test('fetch sizing: a light load is batched (64 KiB or 250 ms per fetch) unless told otherwise', () => {
  const d = readWindowingConfig({});
  assert.equal(d.fetchMinBytes, 65_536);
  assert.equal(d.fetchMaxWaitMs, 250);
  const set = readWindowingConfig({ WINDOWING_FETCH_MIN_BYTES: '1', WINDOWING_FETCH_MAX_WAIT_MS: '1000' });
  assert.equal(set.fetchMinBytes, 1);
  assert.equal(set.fetchMaxWaitMs, 1000);
});

test('a bad fetch setting fails at start naming its variable', () => {
  for (const [name, value] of [
    ['WINDOWING_FETCH_MIN_BYTES', '0'],
    ['WINDOWING_FETCH_MIN_BYTES', 'lots'],
    ['WINDOWING_FETCH_MAX_WAIT_MS', '0'],
    ['WINDOWING_FETCH_MAX_WAIT_MS', '60000'],
  ] as const) {
    assert.throws(
      () => readWindowingConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(name),
      `${name}=${value}`,
    );
  }
});
