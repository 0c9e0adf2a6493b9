import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configReader, readCommonConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

test('defaults produce a frozen config', () => {
  const c = configReader({});
  const cfg = c.done(readCommonConfig(c, 'x'));
  assert.deepEqual(cfg.kafka.brokers, ['127.0.0.1:9092']);
  assert.equal(cfg.mqtt.url, 'mqtts://127.0.0.1:8883');
  assert.equal(cfg.registryUrl, 'http://127.0.0.1:8081/apis/ccompat/v7');
  assert.equal(cfg.kafka.maxBatchBytes, 1_000_000);
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.kafka) && Object.isFrozen(cfg.kafka.brokers));
});

// Any readable file stands in for a PEM here: the config reads files, TLS parses them.
const PEM = fileURLToPath(import.meta.url);

test('MQTT client certificate files are read at start', () => {
  const c = configReader({ MQTT_URL: 'mqtts://broker:8883', MQTT_CA_FILE: PEM, MQTT_CERT_FILE: PEM, MQTT_KEY_FILE: PEM });
  const cfg = c.done(readCommonConfig(c, 'x'));
  const text = readFileSync(PEM, 'utf8');
  assert.deepEqual([cfg.mqtt.ca, cfg.mqtt.cert, cfg.mqtt.key], [text, text, text]);
});

const bad: Array<[Record<string, string>, string]> = [
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  [{ MQTT_URL: 'http://x' }, 'MQTT_URL'],
  [{ SCHEMA_REGISTRY_URL: 'not a url' }, 'SCHEMA_REGISTRY_URL'],
  [{ KAFKA_BROKERS: ' , ' }, 'KAFKA_BROKERS'],
  [{ KAFKA_MAX_BATCH_BYTES: 'lots' }, 'KAFKA_MAX_BATCH_BYTES'],
  [{ KAFKA_MAX_BATCH_BYTES: '100' }, 'KAFKA_MAX_BATCH_BYTES'],
  [{ MQTT_CA_FILE: '/nonexistent/ca.pem' }, 'MQTT_CA_FILE'],
  [{ MQTT_CERT_FILE: PEM }, 'MQTT_KEY_FILE'],
  [{ MQTT_KEY_FILE: PEM }, 'MQTT_CERT_FILE'],
  [{ MQTT_URL: 'mqtt://broker:1883', MQTT_CERT_FILE: PEM, MQTT_KEY_FILE: PEM }, 'MQTT_URL'],
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
