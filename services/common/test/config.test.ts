import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configReader, readCommonConfig, type KafkaSecurity } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kafkaSecurityOptions } from '../src/kafka.js';

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
    assert.throws(
      () => c.done(value),
      (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.startsWith(variable),
    );
  });
}

test('numbers: type and range errors name the variable; all problems are reported together', () => {
  const c = configReader({ A: 'abc', B: '5', C: '1.5' });
  c.int('A', 1);
  c.int('B', 1, { max: 3 });
  c.int('C', 1);
  assert.throws(
    () => c.done({}),
    (e: unknown) => e instanceof ConfigError && /A: expected an integer/.test(e.message) && /B: must be <= 3/.test(e.message) && /C:/.test(e.message),
  );
});

test('bool and required strings', () => {
  const c = configReader({ FLAG: 'yes', NOPE: 'maybe' });
  assert.equal(c.bool('FLAG', false), true);
  c.bool('NOPE', false);
  c.str('REQUIRED');
  assert.throws(() => c.done({}), /NOPE.*maybe.*REQUIRED: is required|REQUIRED/);
});

// ---------------------------------------------------------------- Kafka security (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CA_FILE)

const dir = mkdtempSync(path.join(tmpdir(), 'pitwall-config-'));
const passwordFile = path.join(dir, 'ingest.password');
writeFileSync(passwordFile, 's3cret-from-file\n', { mode: 0o600 });
const emptyFile = path.join(dir, 'empty');
writeFileSync(emptyFile, '  \n');
const caFile = path.join(dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const missing = path.join(dir, 'nope.password');

const goodSecurity: Array<[string, Record<string, string>, KafkaSecurity]> = [
  ['nothing set: PLAINTEXT', {}, { protocol: 'PLAINTEXT', sasl: undefined, tls: undefined }],
  [
    'a username implies SASL_PLAINTEXT with scram-sha-512',
    { KAFKA_SASL_USERNAME: 'ingest', KAFKA_SASL_PASSWORD: 'pw' },
    { protocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'scram-sha-512', username: 'ingest', password: 'pw' }, tls: undefined },
  ],
  [
    'the password from a file, trimmed',
    { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_USERNAME: 'ingest', KAFKA_SASL_PASSWORD_FILE: passwordFile },
    { protocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'scram-sha-512', username: 'ingest', password: 's3cret-from-file' }, tls: undefined },
  ],
  [
    'another mechanism',
    { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
    { protocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'plain', username: 'u', password: 'p' }, tls: undefined },
  ],
  ['SSL with the system CAs', { KAFKA_SECURITY_PROTOCOL: 'SSL' }, { protocol: 'SSL', sasl: undefined, tls: { ca: undefined } }],
  ['a CA file implies SSL', { KAFKA_SSL_CA_FILE: caFile }, { protocol: 'SSL', sasl: undefined, tls: { ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' } }],
  [
    'a CA file and a username imply SASL_SSL',
    { KAFKA_SSL_CA_FILE: caFile, KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: passwordFile },
    { protocol: 'SASL_SSL', sasl: { mechanism: 'scram-sha-512', username: 'u', password: 's3cret-from-file' }, tls: { ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' } },
  ],
];
for (const [what, env, expected] of goodSecurity) {
  test(`Kafka security: ${what}`, () => {
    const c = configReader(env);
    const cfg = c.done(readCommonConfig(c, 'x'));
    assert.deepEqual(cfg.kafka.security, expected);
  });
}

const badSecurity: Array<[string, Record<string, string>, string, RegExp]> = [
  ['an unknown protocol', { KAFKA_SECURITY_PROTOCOL: 'TLS' }, 'KAFKA_SECURITY_PROTOCOL', /expected one of PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL/],
  ['an unknown mechanism', { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SASL_MECHANISM: 'gssapi' }, 'KAFKA_SASL_MECHANISM', /scram-sha-512/],
  ['SASL without a username', { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_USERNAME', /required with KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT/],
  ['SASL without a password', { KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_PASSWORD', /KAFKA_SASL_PASSWORD_FILE is required/],
  ['both password and password file', { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SASL_PASSWORD_FILE: passwordFile }, 'KAFKA_SASL_PASSWORD', /not both/],
  ['a password file that does not exist', { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: missing }, 'KAFKA_SASL_PASSWORD_FILE', /cannot read .*ENOENT/],
  ['an empty password file', { KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: emptyFile }, 'KAFKA_SASL_PASSWORD_FILE', /is empty/],
  ['credentials with PLAINTEXT (they would be ignored)', { KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT', KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_USERNAME', /use SASL_PLAINTEXT or SASL_SSL/],
  [
    'a CA file with a plaintext protocol',
    { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_SSL_CA_FILE: caFile },
    'KAFKA_SSL_CA_FILE',
    /use SSL or SASL_SSL/,
  ],
  ['a CA file that is no PEM certificate', { KAFKA_SSL_CA_FILE: passwordFile }, 'KAFKA_SSL_CA_FILE', /no PEM certificate/],
  ['a CA file that does not exist', { KAFKA_SSL_CA_FILE: missing }, 'KAFKA_SSL_CA_FILE', /cannot read/],
];
for (const [what, env, variable, message] of badSecurity) {
  test(`Kafka security: ${what} fails naming ${variable}`, () => {
    const c = configReader(env);
    const value = readCommonConfig(c, 'x');
    assert.throws(
      () => c.done(value),
      (e: unknown) => e instanceof ConfigError && e.variable.split(', ').includes(variable) && e.message.includes(variable) && message.test(e.message),
    );
  });
}

test('Kafka security: the password never appears in an error', () => {
  const c = configReader({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: 'hunter2-secret' });
  const value = readCommonConfig(c, 'x');
  assert.throws(
    () => c.done(value),
    (e: unknown) => e instanceof ConfigError && !e.message.includes('hunter2'),
  );
});

test('kafkaSecurityOptions: kafkajs ssl and sasl options', () => {
  assert.deepEqual(kafkaSecurityOptions(undefined), {});
  assert.deepEqual(kafkaSecurityOptions({ protocol: 'PLAINTEXT', sasl: undefined, tls: undefined }), {});
  assert.deepEqual(kafkaSecurityOptions({ protocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' }, tls: undefined }), {
    sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
  });
  assert.deepEqual(kafkaSecurityOptions({ protocol: 'SSL', sasl: undefined, tls: { ca: undefined } }), { ssl: true });
  assert.deepEqual(kafkaSecurityOptions({ protocol: 'SASL_SSL', sasl: { mechanism: 'plain', username: 'u', password: 'p' }, tls: { ca: 'PEM' } }), {
    ssl: { ca: ['PEM'], rejectUnauthorized: true },
    sasl: { mechanism: 'plain', username: 'u', password: 'p' },
  });
});
