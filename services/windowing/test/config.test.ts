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

test('window definitions: one by default; WINDOW_SIZES_MS lists several tumbling ones', () => {
  const table: Array<{ env: Record<string, string>; want: Array<[number, number, number]> }> = [
    { env: {}, want: [[10_000, 10_000, 2_000]] },
    { env: { WINDOW_SIZE_MS: '20000', WINDOW_ADVANCE_MS: '5000' }, want: [[20_000, 5_000, 2_000]] },
    {
      env: { WINDOW_SIZES_MS: '10000,120000', WINDOW_GRACE_MS: '3000' },
      want: [
        [10_000, 10_000, 3_000],
        [120_000, 120_000, 3_000],
      ],
    },
  ];
  for (const t of table) {
    const c = readWindowingConfig(t.env);
    assert.deepEqual(
      c.windows.map((w) => [w.sizeMs, w.advanceMs, w.graceMs]),
      t.want,
      JSON.stringify(t.env),
    );
    assert.equal(c.window, c.windows[0]);
  }
});

test('a bad WINDOW_SIZES_MS fails at start naming the variable', () => {
  const table: Array<{ env: Record<string, string>; variable: string; message: RegExp }> = [
    { env: { WINDOW_SIZES_MS: '10000,abc' }, variable: 'WINDOW_SIZES_MS', message: /"abc"/ },
    { env: { WINDOW_SIZES_MS: '10000,0' }, variable: 'WINDOW_SIZES_MS', message: /"0"/ },
    { env: { WINDOW_SIZES_MS: '10000,10000' }, variable: 'WINDOW_SIZES_MS', message: /twice/ },
    { env: { WINDOW_SIZES_MS: '10000,120000', WINDOW_SIZE_MS: '10000' }, variable: 'WINDOW_SIZES_MS', message: /not both/ },
    { env: { WINDOW_SIZES_MS: '10000,120000', WINDOW_ADVANCE_MS: '5000' }, variable: 'WINDOW_ADVANCE_MS', message: /tumbling/ },
  ];
  for (const t of table) {
    assert.throws(
      () => readWindowingConfig(t.env),
      (err: unknown) => err instanceof ConfigError && err.message.includes(t.variable) && t.message.test(err.message),
      JSON.stringify(t.env),
    );
  }
});
