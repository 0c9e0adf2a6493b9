/**
 * A private Kafka + Mosquitto + Apicurio for tests that kill brokers: started with scripts/infra.sh
 * under a PITWALL_HOME of their own (<repo>/.pitwall/faults/<id>, downloads shared through a
 * symlink to the default cache) on free ports, so killing them disturbs nobody else's tests.
 *
 * kill(name) is kill -9 of the pid infra.sh recorded; up() is `infra.sh up` with the same
 * environment, which starts only what is not running and waits until everything answers.
 * stop() kills all three and deletes the folder (logs are copied to test-artifacts first). A run
 * that died without stop() is cleaned up by the next one: each folder records its owner's pid.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, freePort, linkSharedSecrets, REPO } from './stack.js';
import { registerBroker } from './identities.js';

export type Broker = 'kafka' | 'mosquitto' | 'apicurio';
const PATTERN: Record<Broker, string> = { kafka: 'kafka.Kafka', mosquitto: 'mosquitto', apicurio: 'apicurio' };
const INFRA_SH = path.join(REPO, 'scripts/infra.sh');
const FAULTS_ROOT = path.join(REPO, '.pitwall/faults');

export interface PrivateInfra {
  readonly home: string;
  /** KAFKA_BROKERS, MQTT_URL, SCHEMA_REGISTRY_URL of the private brokers, for startService. */
  readonly env: { KAFKA_BROKERS: string; MQTT_URL: string; SCHEMA_REGISTRY_URL: string };
  /** kill -9; resolves once the process is gone. */
  kill(broker: Broker): Promise<void>;
  /** `infra.sh up` with the same settings; resolves when every broker answers. */
  up(): Promise<void>;
  running(broker: Broker): boolean;
  stop(): Promise<void>;
}

function pidOf(home: string, broker: Broker): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(home, 'run', `${broker}.pid`), 'utf8').trim());
    // Still ours: alive and still the process infra.sh started (as infra.sh itself checks).
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(PATTERN[broker]) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function killAll(home: string): void {
  for (const b of Object.keys(PATTERN) as Broker[]) {
    const pid = pidOf(home, b);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Folders of earlier runs whose test process is gone: kill their brokers, delete them. */
function sweepStale(): void {
  if (!existsSync(FAULTS_ROOT)) return;
  for (const name of readdirSync(FAULTS_ROOT)) {
    const home = path.join(FAULTS_ROOT, name);
    const owner = Number(existsSync(path.join(home, 'owner.pid')) ? readFileSync(path.join(home, 'owner.pid'), 'utf8') : NaN);
    if (Number.isInteger(owner) && alive(owner)) continue;
    killAll(home);
    rmSync(home, { recursive: true, force: true });
  }
}

export async function startPrivateInfra(id: string): Promise<PrivateInfra> {
  sweepStale();
  const home = path.join(FAULTS_ROOT, id);
  mkdirSync(home, { recursive: true });
  writeFileSync(path.join(home, 'owner.pid'), String(process.pid));
  // Kafka and Apicurio downloads: the default cache (filled by `scripts/pitwall test` before the tests run).
  const cache = path.join(process.env.PITWALL_HOME ?? path.join(REPO, '.pitwall'), 'cache');
  mkdirSync(cache, { recursive: true });
  symlinkSync(cache, path.join(home, 'cache'));
  // Kafka passwords: the shared ones, so kafkaClientConfig() and the services' identities sign in here too
  // (infra.sh provisions the users and the default ACLs on this broker as on any other).
  linkSharedSecrets(home);
  const ports: number[] = [];
  while (ports.length < 4) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [kafka, controller, mqtt, registry] = ports as [number, number, number, number];
  const shEnv = {
    ...process.env,
    PITWALL_HOME: home,
    PITWALL_HOST: '127.0.0.1',
    KAFKA_PORT: String(kafka),
    KAFKA_CONTROLLER_PORT: String(controller),
    MQTT_PORT: String(mqtt),
    REGISTRY_PORT: String(registry),
  };
  const up = (): Promise<void> =>
    new Promise((resolve, reject) => {
      execFile('bash', [INFRA_SH, 'up'], { env: shEnv, timeout: 240_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`infra.sh up (PITWALL_HOME=${home}) failed: ${err.message}\n${stdout}${stderr}`)) : resolve(),
      );
    });
  const cleanup = (): void => killAll(home);
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // infra.sh makes this run's own fleet CA in <home>/pki; clients of its Mosquitto use it.
  registerBroker(`mqtts://127.0.0.1:${mqtt}`, path.join(home, 'pki'));
  try {
    await up();
  } catch (err) {
    cleanup();
    throw err;
  }
  return {
    home,
    env: {
      KAFKA_BROKERS: `127.0.0.1:${kafka}`,
      MQTT_URL: `mqtts://127.0.0.1:${mqtt}`,
      SCHEMA_REGISTRY_URL: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
    },
    async kill(broker) {
      const pid = pidOf(home, broker);
      if (pid === undefined) return;
      process.kill(pid, 'SIGKILL');
      // Gone, or a zombie (empty cmdline) waiting for init to reap it.
      for (let i = 0; i < 100 && pidOf(home, broker) === pid; i++) await new Promise((r) => setTimeout(r, 50));
    },
    up,
    running: (broker) => pidOf(home, broker) !== undefined,
    async stop() {
      cleanup();
      process.off('exit', cleanup);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await new Promise((r) => setTimeout(r, 500));
      mkdirSync(ARTIFACTS, { recursive: true });
      cpSync(path.join(home, 'logs'), path.join(ARTIFACTS, `faults-${id}-infra-logs`), { recursive: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}
