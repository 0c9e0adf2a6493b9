/**
 * Configuration is read once, in a service's main.ts, from an explicit environment object (library
 * modules never touch process.env). Every problem is collected and reported together, each naming
 * its environment variable, and the result is frozen.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import type { RegistryCredentials } from './registry.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigReader {
  str(name: string, fallback?: string): string;
  optional(name: string): string | undefined;
  int(name: string, fallback: number, range?: { min?: number; max?: number }): number;
  num(name: string, fallback: number, range?: { min?: number; max?: number }): number;
  bool(name: string, fallback: boolean): boolean;
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T;
  list(name: string, fallback: readonly string[]): string[];
  url(name: string, fallback: string, protocols: readonly string[]): string;
  /** The trimmed contents of the file the variable names (undefined when unset); an unreadable or empty file fails naming the variable. */
  file(name: string): string | undefined;
  /** Records a problem with a variable (a rule across variables); reported by done(). */
  problem(name: string, message: string): void;
  /** Throws one ConfigError naming every bad variable, or returns the value deep-frozen. */
  done<T extends object>(value: T): Readonly<T>;
}

export function configReader(env: Env): ConfigReader {
  const problems: ConfigError[] = [];
  const fail = <T>(name: string, message: string, placeholder: T): T => {
    problems.push(new ConfigError(name, message));
    return placeholder;
  };
  const raw = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const number = (name: string, fallback: number, integer: boolean, range: { min?: number; max?: number } = {}): number => {
    const v = raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      return fail(name, `expected ${integer ? 'an integer' : 'a number'}, got "${v}"`, fallback);
    }
    if (range.min !== undefined && n < range.min) return fail(name, `must be >= ${range.min}, got ${n}`, fallback);
    if (range.max !== undefined && n > range.max) return fail(name, `must be <= ${range.max}, got ${n}`, fallback);
    return n;
  };
  return {
    str(name, fallback) {
      const v = raw(name);
      if (v !== undefined) return v;
      return fallback ?? fail(name, 'is required', '');
    },
    optional: (name) => raw(name),
    int: (name, fallback, range) => number(name, fallback, true, range),
    num: (name, fallback, range) => number(name, fallback, false, range),
    bool(name, fallback) {
      const v = raw(name)?.toLowerCase();
      if (v === undefined) return fallback;
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return fail(name, `expected true or false, got "${v}"`, fallback);
    },
    oneOf(name, allowed, fallback) {
      const v = raw(name);
      if (v === undefined) return fallback;
      if ((allowed as readonly string[]).includes(v)) return v as (typeof allowed)[number];
      return fail(name, `expected one of ${allowed.join(', ')}, got "${v}"`, fallback);
    },
    list(name, fallback) {
      const v = raw(name);
      if (v === undefined) return [...fallback];
      const items = v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      return items.length > 0 ? items : fail(name, 'expected a comma-separated list', [...fallback]);
    },
    url(name, fallback, protocols) {
      const v = raw(name) ?? fallback;
      try {
        const u = new URL(v);
        if (!protocols.includes(u.protocol.replace(/:$/, ''))) {
          return fail(name, `expected a ${protocols.join(' or ')} URL, got "${v}"`, fallback);
        }
        return v;
      } catch {
        return fail(name, `expected a URL, got "${v}"`, fallback);
      }
    },
    file(name) {
      const v = raw(name);
      if (v === undefined) return undefined;
      let text: string;
      try {
        text = readFileSync(v, 'utf8').trim();
      } catch (err) {
        return fail(name, `cannot read "${v}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, undefined);
      }
      return text === '' ? fail(name, `"${v}" is empty`, undefined) : text;
    },
    problem(name, message) {
      problems.push(new ConfigError(name, message));
    },
    done(value) {
      if (problems.length === 1) throw problems[0]!;
      if (problems.length > 1) {
        const err = new ConfigError(problems.map((p) => p.variable).join(', '), problems.map((p) => p.message).join('; '));
        throw err;
      }
      return deepFreeze(value);
    },
  };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Default KAFKA_MAX_BATCH_BYTES: under Kafka's default max.message.bytes (1048588). */
export const DEFAULT_MAX_BATCH_BYTES = 1_000_000;

/** Settings every service shares. Variable names are the same in every service and in k8s ConfigMaps. */
export interface CommonConfig {
  service: string;
  logLevel: LogLevel;
  /** maxBatchBytes: most bytes per Kafka send (further lowered to the topics' max.message.bytes, see send.ts). */
  kafka: { brokers: string[]; clientId: string; maxBatchBytes: number; security: KafkaSecurity };
  registryUrl: string;
  /** SCHEMA_REGISTRY_USERNAME and its password: unset, the registry is read anonymously (all a service needs). */
  registryCredentials: RegistryCredentials | undefined;
  /** ca/cert/key: PEM text read from MQTT_CA_FILE, MQTT_CERT_FILE, MQTT_KEY_FILE. */
  mqtt: { url: string; username: string | undefined; password: string | undefined; ca?: string; cert?: string; key?: string };
  /** Readiness (readiness.ts): PROGRESS_STALL_MS, FATAL_REPEAT_LIMIT. */
  health: { stallMs: number; fatalRepeatLimit: number };
  topics: TopicNames;
}

export interface TopicNames {
  telemetry: string;
  telemetryDlq: string;
  features: string;
  alerts: string;
  /** Every scored window (schemas/score). */
  scores: string;
  /** Compacted incident state (schemas/incident). */
  incidents: string;
  /** Operators' acknowledge/resolve actions (schemas/incident-command). */
  incidentCommands: string;
  /** Cars' alert receipts (schemas/receipt). */
  receipts: string;
  /** Which model version every scoring replica serves (JSON, see services/scoring). */
  modelUpdates: string;
  /** Shadow-model agreement reports (JSON, see services/scoring). */
  shadowReports: string;
  /** Drift of live windows from the models' training data, fleet and per vehicle (JSON, see services/scoring drift.ts). */
  driftReports: string;
}

/**
 * MQTT over TLS with a client certificate by default (the broker takes the identity from it). The
 * CA file is optional (the system's CAs otherwise); certificate and key come together.
 */
function readMqttConfig(c: ConfigReader): CommonConfig['mqtt'] {
  const url = c.url('MQTT_URL', 'mqtts://127.0.0.1:8883', ['mqtt', 'mqtts', 'ws', 'wss', 'tcp', 'ssl', 'tls']);
  const ca = c.file('MQTT_CA_FILE');
  const cert = c.file('MQTT_CERT_FILE');
  const key = c.file('MQTT_KEY_FILE');
  if (cert !== undefined && key === undefined && c.optional('MQTT_KEY_FILE') === undefined) c.problem('MQTT_KEY_FILE', 'is required with MQTT_CERT_FILE');
  if (key !== undefined && cert === undefined && c.optional('MQTT_CERT_FILE') === undefined) c.problem('MQTT_CERT_FILE', 'is required with MQTT_KEY_FILE');
  const tls = /^(mqtts|wss|ssl|tls):/.test(url);
  if (!tls && (ca !== undefined || cert !== undefined)) c.problem('MQTT_URL', `is ${url.split(':')[0]}://, but MQTT_CA_FILE/MQTT_CERT_FILE need TLS (mqtts:// or wss://)`);
  return {
    url,
    username: c.optional('MQTT_USERNAME'),
    password: c.optional('MQTT_PASSWORD'),
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
  };
}

export const KAFKA_SECURITY_PROTOCOLS = ['PLAINTEXT', 'SASL_PLAINTEXT', 'SSL', 'SASL_SSL'] as const;
export type KafkaSecurityProtocol = (typeof KAFKA_SECURITY_PROTOCOLS)[number];
export const KAFKA_SASL_MECHANISMS = ['scram-sha-512', 'scram-sha-256', 'plain'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/**
 * How a service authenticates to Kafka and verifies the broker (docs/configuration.md).
 * `sasl` is set exactly for SASL_PLAINTEXT and SASL_SSL; `tls` exactly for SSL and SASL_SSL
 * (`ca`: PEM text of KAFKA_SSL_CA_FILE; without it the system's trusted CAs).
 */
export interface KafkaSecurity {
  protocol: KafkaSecurityProtocol;
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: string } | undefined;
  tls: { ca: string | undefined } | undefined;
}

/**
 * KAFKA_SECURITY_PROTOCOL (default: SASL_PLAINTEXT when KAFKA_SASL_USERNAME is set, else PLAINTEXT;
 * with KAFKA_SSL_CA_FILE set the SSL variant of that), KAFKA_SASL_MECHANISM (scram-sha-512),
 * KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE (not both), KAFKA_SSL_CA_FILE.
 */
export function readKafkaSecurity(c: ConfigReader): KafkaSecurity {
  const username = c.optional('KAFKA_SASL_USERNAME');
  const inline = c.optional('KAFKA_SASL_PASSWORD');
  const passwordFile = c.optional('KAFKA_SASL_PASSWORD_FILE');
  const caFile = c.optional('KAFKA_SSL_CA_FILE');
  const implied: KafkaSecurityProtocol = username !== undefined ? (caFile ? 'SASL_SSL' : 'SASL_PLAINTEXT') : caFile ? 'SSL' : 'PLAINTEXT';
  const protocol = c.oneOf('KAFKA_SECURITY_PROTOCOL', KAFKA_SECURITY_PROTOCOLS, implied);
  const mechanism = c.oneOf('KAFKA_SASL_MECHANISM', KAFKA_SASL_MECHANISMS, 'scram-sha-512');
  const fromFile = c.file('KAFKA_SASL_PASSWORD_FILE');
  const ca = c.file('KAFKA_SSL_CA_FILE');
  const usesSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) c.problem('KAFKA_SSL_CA_FILE', `"${caFile}" holds no PEM certificate`);
  if (caFile !== undefined && !usesTls) c.problem('KAFKA_SSL_CA_FILE', `is set but KAFKA_SECURITY_PROTOCOL is ${protocol}; use SSL or SASL_SSL`);
  let sasl: KafkaSecurity['sasl'];
  if (usesSasl) {
    if (username === undefined) c.problem('KAFKA_SASL_USERNAME', `is required with KAFKA_SECURITY_PROTOCOL=${protocol}`);
    if (inline !== undefined && passwordFile !== undefined) c.problem('KAFKA_SASL_PASSWORD', 'set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both');
    else if (inline === undefined && passwordFile === undefined)
      c.problem('KAFKA_SASL_PASSWORD', `KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SECURITY_PROTOCOL=${protocol}`);
    sasl = { mechanism, username: username ?? '', password: inline ?? fromFile ?? '' };
  } else {
    for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE'] as const) {
      if (c.optional(name) !== undefined) c.problem(name, `is set but KAFKA_SECURITY_PROTOCOL is ${protocol}; use SASL_PLAINTEXT or SASL_SSL`);
    }
  }
  return { protocol, sasl, tls: usesTls ? { ca } : undefined };
}

/**
 * SCHEMA_REGISTRY_USERNAME with SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE (not both):
 * HTTP basic credentials for the registry. Services need none where anonymous reads are allowed
 * (scripts/infra.sh); the deploy step needs a write identity.
 */
export function readRegistryCredentials(c: ConfigReader): RegistryCredentials | undefined {
  const username = c.optional('SCHEMA_REGISTRY_USERNAME');
  const inline = c.optional('SCHEMA_REGISTRY_PASSWORD');
  const passwordFile = c.optional('SCHEMA_REGISTRY_PASSWORD_FILE');
  const fromFile = c.file('SCHEMA_REGISTRY_PASSWORD_FILE');
  if (username === undefined) {
    if (inline !== undefined || passwordFile !== undefined) c.problem('SCHEMA_REGISTRY_USERNAME', 'is required with SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE');
    return undefined;
  }
  if (inline !== undefined && passwordFile !== undefined) c.problem('SCHEMA_REGISTRY_PASSWORD', 'set SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE, not both');
  else if (inline === undefined && passwordFile === undefined)
    c.problem('SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE is required with SCHEMA_REGISTRY_USERNAME');
  return { username, password: (inline ?? fromFile ?? '').trim() };
}

export function readCommonConfig(c: ConfigReader, service: string): CommonConfig {
  return {
    service,
    logLevel: c.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    kafka: {
      brokers: c.list('KAFKA_BROKERS', ['127.0.0.1:9092']),
      clientId: c.str('KAFKA_CLIENT_ID', `pitwall-${service}`),
      maxBatchBytes: c.int('KAFKA_MAX_BATCH_BYTES', DEFAULT_MAX_BATCH_BYTES, { min: 4096, max: 100 * 1024 * 1024 }),
      security: readKafkaSecurity(c),
    },
    registryUrl: c.url('SCHEMA_REGISTRY_URL', 'http://127.0.0.1:8081/apis/ccompat/v7', ['http', 'https']),
    registryCredentials: readRegistryCredentials(c),
    mqtt: readMqttConfig(c),
    health: {
      stallMs: c.int('PROGRESS_STALL_MS', 30_000, { min: 1000, max: 86_400_000 }),
      fatalRepeatLimit: c.int('FATAL_REPEAT_LIMIT', 10, { min: 1, max: 1_000_000 }),
    },
    topics: {
      telemetry: c.str('TOPIC_TELEMETRY', 'vehicle.telemetry'),
      telemetryDlq: c.str('TOPIC_TELEMETRY_DLQ', 'vehicle.telemetry.dlq'),
      features: c.str('TOPIC_FEATURES', 'vehicle.features'),
      alerts: c.str('TOPIC_ALERTS', 'maintenance.alerts'),
      scores: c.str('TOPIC_SCORES', 'vehicle.scores'),
      incidents: c.str('TOPIC_INCIDENTS', 'maintenance.incidents'),
      incidentCommands: c.str('TOPIC_INCIDENT_COMMANDS', 'maintenance.incident-commands'),
      receipts: c.str('TOPIC_RECEIPTS', 'vehicle.receipts'),
      modelUpdates: c.str('TOPIC_MODEL_UPDATES', 'model.updates'),
      shadowReports: c.str('TOPIC_SHADOW_REPORTS', 'model.shadow'),
      driftReports: c.str('TOPIC_DRIFT_REPORTS', 'model.drift'),
    },
  };
}
