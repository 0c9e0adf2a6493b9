/**
 * Runs Pitwall services as real processes (their own main.ts, config and shutdown) against the
 * real brokers started by scripts/infra.sh. Each test run uses its own topic names and consumer
 * groups, so runs never see each other's data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mqttEnvFor } from './identities.js';
import {
  aclBindings,
  configReader,
  createSchemaStore,
  defaultSchemasDir,
  deploySchemas,
  grantAcls,
  KAFKA_SERVICE_IDENTITIES,
  kafkaIdentityEnv as localKafkaIdentityEnv,
  kafkaSecurityOptions,
  localInfraDirs,
  partitionLag,
  readCommonConfig,
  readKafkaSecurity,
  registryAdminCredentials,
  serviceGrants,
  type KafkaServiceIdentity,
  type LocalInfraDirs,
  type SchemaStore,
} from '@pitwall/common';
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const ARTIFACTS = path.join(REPO, 'test-artifacts');

export const INFRA = Object.freeze({
  kafka: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  mqtt: process.env.MQTT_URL ?? 'mqtts://127.0.0.1:8883',
  registry: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
});

const HOME = process.env.PITWALL_HOME ?? path.join(REPO, '.pitwall');
/**
 * Credentials written by scripts/infra.sh: Kafka passwords (one file per identity), the CA of
 * Kafka's TLS listener and the registry's admin password. Private brokers (private-infra.ts,
 * kafka.ts) link their folders to these (linkSharedSecrets), so the same identities sign in everywhere.
 */
export const LOCAL_DIRS: LocalInfraDirs = Object.freeze({
  ...localInfraDirs(HOME),
  ...(process.env.KAFKA_SECRETS_DIR ? { kafkaSecrets: process.env.KAFKA_SECRETS_DIR } : {}),
  ...(process.env.KAFKA_PKI_DIR ? { kafkaPki: process.env.KAFKA_PKI_DIR } : {}),
});
export const KAFKA_SECRETS = LOCAL_DIRS.kafkaSecrets;
export const KAFKA_PKI = LOCAL_DIRS.kafkaPki;

/** The environment that makes a service (or CLI) sign in to Kafka as `user`. */
export function kafkaIdentityEnv(user: string): Record<string, string> {
  return localKafkaIdentityEnv(LOCAL_DIRS, user);
}

/** Links a private broker home's secrets/kafka, secrets/registry and pki/kafka to the shared ones. */
export function linkSharedSecrets(home: string): void {
  const theirs = localInfraDirs(home);
  for (const key of ['kafkaSecrets', 'registrySecrets', 'kafkaPki'] as const) {
    mkdirSync(LOCAL_DIRS[key], { recursive: true, mode: 0o700 });
    mkdirSync(path.dirname(theirs[key]), { recursive: true, mode: 0o700 });
    if (!existsSync(theirs[key])) symlinkSync(LOCAL_DIRS[key], theirs[key]);
  }
}

/** A registry client signed in as the deploy identity (tests write schemas of their own topics). */
export function adminSchemaStore(url: string = INFRA.registry): SchemaStore {
  return createSchemaStore(url, registryAdminCredentials(LOCAL_DIRS));
}

const deployed = new Map<string, Promise<void>>();
/**
 * The deploy step for a run's topic names, as scripts/infra.sh runs it for the default names:
 * services only look their schemas up. Once per registry and names.
 */
export async function deployTopicSchemas(env: Record<string, string>): Promise<void> {
  const url = env.SCHEMA_REGISTRY_URL ?? INFRA.registry;
  const topics = readCommonConfig(configReader(env), 'e2e').topics;
  const key = `${url} ${JSON.stringify(topics)}`;
  // One deploy per key, shared by services started together (Promise.all); a failed one is retried.
  let done = deployed.get(key);
  if (!done) {
    done = deploySchemas(adminSchemaStore(url), topics, defaultSchemasDir()).then(() => undefined);
    done.catch(() => deployed.delete(key));
    deployed.set(key, done);
  }
  await done;
}

/**
 * kafkajs options for a test's own clients: the brokers and the admin identity (a super user), read
 * through the services' own configuration code. Spread into `new Kafka({ clientId, ...kafkaClientConfig() })`.
 */
export function kafkaClientConfig(brokers: string = INFRA.kafka, user = 'admin'): Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'> {
  const c = configReader(kafkaIdentityEnv(user));
  const security = c.done(readKafkaSecurity(c));
  return { brokers: brokers.split(','), ...kafkaSecurityOptions(security) };
}

const KAFKA_SERVICES = new Set<string>(KAFKA_SERVICE_IDENTITIES);
const granted = new Set<string>();

/**
 * Gives a service's identity the ACLs for this run's topic and group names (the broker allows
 * nothing without one), as scripts/infra.sh does for the default names. Once per broker and names:
 * a restart while Kafka is down (faults tests) needs no broker.
 */
export async function grantServiceAcls(service: KafkaServiceIdentity, env: Record<string, string>): Promise<void> {
  const brokers = env.KAFKA_BROKERS ?? INFRA.kafka;
  const bindings = aclBindings(env.KAFKA_SASL_USERNAME ?? service, serviceGrants(service, env));
  const key = `${brokers} ${JSON.stringify(bindings)}`;
  if (granted.has(key)) return;
  const admin = new Kafka({ clientId: 'e2e-acls', ...kafkaClientConfig(brokers), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await grantAcls(admin, bindings);
  } finally {
    await admin.disconnect();
  }
  granted.add(key);
}

export function runId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export interface ServiceProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly healthPort: number;
  readonly logFile: string;
  ready(): Promise<boolean>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for exit. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startService(name: string, env: Record<string, string>, tag: string): Promise<ServiceProcess> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const healthPort = await freePort();
  const logFile = path.join(ARTIFACTS, `${tag}-${name}.log`);
  // Ingest and dispatch connect to MQTT as themselves, the simulator as a gateway for its cars
  // (unless the test gives identities of its own); a Kafka service signs in as itself (unless the
  // test says otherwise) with this run's ACLs.
  const mqttUrl = env.MQTT_URL ?? INFRA.mqtt;
  const identity: Record<string, [kind: 'service' | 'gateway', name: string]> = { ingest: ['service', 'ingest'], dispatch: ['service', 'dispatch'], simulator: ['gateway', 'e2e'] };
  const mqttEnv = identity[name] && env.MQTT_CERT_FILE === undefined && mqttUrl.startsWith('mqtts:') ? await mqttEnvFor(mqttUrl, ...identity[name]) : {};
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    KAFKA_BROKERS: INFRA.kafka,
    MQTT_URL: INFRA.mqtt,
    SCHEMA_REGISTRY_URL: INFRA.registry,
    LOG_LEVEL: 'info',
    HEALTH_PORT: String(healthPort),
    ...mqttEnv,
    ...(KAFKA_SERVICES.has(name) ? kafkaIdentityEnv(name) : {}),
    ...env,
  };
  if (KAFKA_SERVICES.has(name)) {
    await grantServiceAcls(name as KafkaServiceIdentity, fullEnv);
    await deployTopicSchemas(fullEnv);
  }
  const log = createWriteStream(logFile);
  const proc = spawn(process.execPath, [path.join(REPO, 'services', name, 'dist/src/main.js')], {
    cwd: path.join(REPO, 'services', name),
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  // A service a test forgot (its setup failed half way, say) must not keep the test file alive
  // until CI's deadline: it does not hold the event loop, and dies with the test process. stop()
  // and kill() hold the loop again while they wait.
  proc.unref();
  (proc.stdout as unknown as { unref(): void }).unref();
  (proc.stderr as unknown as { unref(): void }).unref();
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const svc: ServiceProcess = {
    name,
    proc,
    healthPort,
    logFile,
    exited,
    async ready() {
      try {
        const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
        return res.status === 200;
      } catch {
        return false;
      }
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.ref();
      proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.ref();
      proc.kill('SIGKILL');
      await exited;
    },
  };
  return svc;
}

/** The last lines of a log file, each cut to 600 characters; '' when it cannot be read. */
export async function logTail(file: string, lines: number): Promise<string> {
  // The service's stdout pipe may still be flushing into the file right after it exits.
  await new Promise((r) => setTimeout(r, 200));
  try {
    const text = await readFile(file, 'utf8');
    return text
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l))
      .join('\n');
  } catch {
    return '';
  }
}

/**
 * Resolves with the first line of a service's log that matches `pattern`, read again every 250 ms;
 * fails after `timeoutMs` with the log's last lines. (Here, not in @pitwall/common/testing: the log
 * files are startService's.)
 */
export async function waitForLog(service: Pick<ServiceProcess, 'name' | 'logFile'>, pattern: RegExp, timeoutMs: number): Promise<string> {
  try {
    return await waitFor(`${pattern} in the log of ${service.name}`, async () => (await readFile(service.logFile, 'utf8')).split('\n').find((line) => pattern.test(line)), timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; see ${service.logFile}; its last lines:\n${await logTail(service.logFile, 10)}`, { cause: err });
  }
}

export async function waitReady(services: ServiceProcess[], timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    services.map((s) =>
      Promise.race([
        waitFor(`${s.name} to be ready (log: ${s.logFile})`, () => s.ready(), timeoutMs),
        s.exited.then(async (code) => {
          // CI prints the test output, not the artifact files: carry the log's end in the error.
          const tail = await logTail(s.logFile, 15);
          throw new Error(`${s.name} exited with code ${code} before it was ready; see ${s.logFile}; its last lines:\n${tail}`);
        }),
      ]),
    ),
  );
}

/** Topic names, groups and ids private to one test run. */
export function isolatedEnv(id: string) {
  return {
    TOPIC_TELEMETRY: `e2e.${id}.vehicle.telemetry`,
    TOPIC_TELEMETRY_DLQ: `e2e.${id}.vehicle.telemetry.dlq`,
    TOPIC_TELEMETRY_LATE: `e2e.${id}.vehicle.telemetry.late`,
    WINDOWING_TRANSACTIONAL_ID_PREFIX: `e2e.${id}.windowing`,
    TOPIC_FEATURES: `e2e.${id}.vehicle.features`,
    TOPIC_ALERTS: `e2e.${id}.maintenance.alerts`,
    WINDOWING_GROUP_ID: `e2e.${id}.windowing`,
    SCORING_GROUP_ID: `e2e.${id}.scoring`,
    DISPATCH_GROUP_ID: `e2e.${id}.dispatch`,
    TOPIC_SCORES: `e2e.${id}.vehicle.scores`,
    TOPIC_INCIDENTS: `e2e.${id}.maintenance.incidents`,
    TOPIC_INCIDENT_COMMANDS: `e2e.${id}.maintenance.incident-commands`,
    TOPIC_RECEIPTS: `e2e.${id}.vehicle.receipts`,
    TOPIC_MODEL_UPDATES: `e2e.${id}.model.updates`,
    TOPIC_SHADOW_REPORTS: `e2e.${id}.model.shadow`,
    TOPIC_DRIFT_REPORTS: `e2e.${id}.model.drift`,
    INCIDENTS_GROUP_ID: `e2e.${id}.incidents`,
    INCIDENTS_TRANSACTIONAL_ID_PREFIX: `e2e.${id}.incidents`,
    CONSOLE_GROUP_ID_PREFIX: `e2e.${id}.console`,
    TOPIC_CONSOLE_SESSIONS: `e2e.${id}.console.sessions`,
    TOPIC_CONSOLE_AUDIT: `e2e.${id}.console.audit`,
    INGEST_RECEIPT_SUBSCRIPTION: `$share/e2e-${id}/vehicles/+/alerts/receipt`,
    INGEST_CLIENT_ID: `e2e-${id}-ingest`,
    INGEST_SUBSCRIPTION: `$share/e2e-${id}/vehicles/+/telemetry`,
    DISPATCH_FLEET_TOPIC: `fleet/e2e/${id}/incidents`,
    // Test sessions must not outlive the run: an offline persistent session queues every message.
    INGEST_SESSION_EXPIRY_S: '30',
  };
}

/** Records in `topic` (end minus start offsets, control records included), over all partitions. */
export async function topicRecords(admin: Admin, topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

/** What `group` has not yet committed of `topic`, over all partitions (a partition it never committed counts whole). */
export async function groupLag(admin: Admin, group: string, topic: string): Promise<number> {
  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, p.offset]));
  return ends.reduce((n, p) => n + Number(partitionLag(at.get(p.partition) ?? '-1', p)), 0);
}

/**
 * A positive gate for negative assertions ("nothing else arrived"): resolves once every group has
 * committed everything of its topic, at two checks a second apart, so that whatever the stream would
 * produce from its input has gone through. Fails after `timeoutMs` naming the groups still behind.
 */
export async function waitForCaughtUp(admin: Admin, pairs: readonly { group: string; topic: string }[], timeoutMs: number): Promise<void> {
  let behind: string[] = [];
  let streak = 0;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lags = await Promise.all(pairs.map(async (p) => ({ ...p, lag: await groupLag(admin, p.group, p.topic) })));
    behind = lags.filter((l) => l.lag > 0).map((l) => `${l.group} ${l.lag} behind on ${l.topic}`);
    streak = behind.length === 0 ? streak + 1 : 0;
    if (streak >= 2) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for the consumers to catch up: ${behind.join('; ') || 'caught up only once'}`);
}
