import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configReader, readCommonConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

test('defaults produce a frozen config', () => {
  const c = configReader({});
  const cfg = c.done(readCommonConfig(c, 'x'));
  assert.deepEqual(cfg.kafka.brokers, ['127.0.0.1:9092']);
  assert.equal(cfg.mqtt.url, 'mqtt://127.0.0.1:1883');
  assert.equal(cfg.registryUrl, 'http://127.0.0.1:8081/apis/ccompat/v7');
  assert.equal(cfg.kafka.maxBatchBytes, 1_000_000);
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.kafka) && Object.isFrozen(cfg.kafka.brokers));
});

const bad: Array<[Record<string, string>, string]> = [
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  [{ MQTT_URL: 'http://x' }, 'MQTT_URL'],
  [{ SCHEMA_REGISTRY_URL: 'not a url' }, 'SCHEMA_REGISTRY_URL'],
  [{ KAFKA_BROKERS: ' , ' }, 'KAFKA_BROKERS'],
  [{ KAFKA_MAX_BATCH_BYTES: 'lots' }, 'KAFKA_MAX_BATCH_BYTES'],
  [{ KAFKA_MAX_BATCH_BYTES: '100' }, 'KAFKA_MAX_BATCH_BYTES'],
];
for (const [env, variable] of bad) {
  test(`a bad ${variable} fails naming the variable`, () => {
    const c = configReader(env);
    const value = readCommonConfig(c, 'x');
    assert.throws(() => c.done(value), (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(variable));
  });
}

test('numbers: type and range errors name the variable; all problems are reported together', () => {
  const c = configReader({ A: 'abc', B: '5', C: '1.5' });
  c.int('A', 1);
  c.int('B', 1, { max: 3 });
  c.int('C', 1);
  assert.throws(() => c.done({}), (e: unknown) => e instanceof ConfigError && /A: expected an integer/.test(e.message) && /B: must be <= 3/.test(e.message) && /C:/.test(e.message));
});

test('bool and required strings', () => {
  const c = configReader({ FLAG: 'yes', NOPE: 'maybe' });
  assert.equal(c.bool('FLAG', false), true);
  c.bool('NOPE', false);
  c.str('REQUIRED');
  assert.throws(() => c.done({}), /NOPE.*maybe.*REQUIRED: is required|REQUIRED/);
});
