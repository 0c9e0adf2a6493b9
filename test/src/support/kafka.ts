/**
 * A private Kafka for tests that kill the broker, started with `scripts/infra.sh up kafka` under a
 * PITWALL_HOME of its own (<repo>/.pitwall/test-kafka/<id>, the downloaded jars shared through a
 * symlink to the default cache) on free ports. kill() is kill -9 of the pid infra.sh recorded; up()
 * starts it again on the same data; stop() kills it and deletes the folder (logs copied to
 * test-artifacts). The shared brokers are never touched.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, freePort, linkSharedSecrets, REPO } from './stack.js';

export interface PrivateKafka {
  /** For KAFKA_BROKERS. */
  readonly brokers: string;
  up(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateKafka(id: string): Promise<PrivateKafka> {
  const home = path.join(REPO, '.pitwall/test-kafka', id);
  mkdirSync(home, { recursive: true });
  const cache = path.join(process.env.PITWALL_HOME ?? path.join(REPO, '.pitwall'), 'cache');
  symlinkSync(cache, path.join(home, 'cache'));
  // The shared Kafka passwords (see private-infra.ts).
  linkSharedSecrets(home);
  const port = await freePort();
  let controller = await freePort();
  while (controller === port) controller = await freePort();
  const env = { ...process.env, PITWALL_HOME: home, PITWALL_HOST: '127.0.0.1', KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller), KAFKA_HEAP: '512m' };
  const pid = (): number | undefined => {
    try {
      const n = Number(readFileSync(path.join(home, 'run/kafka.pid'), 'utf8').trim());
      return readFileSync(`/proc/${n}/cmdline`, 'utf8').includes('kafka.Kafka') ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const kill = async (): Promise<void> => {
    const n = pid();
    if (n === undefined) return;
    process.kill(n, 'SIGKILL');
    for (let i = 0; i < 200 && pid() === n; i++) await new Promise((r) => setTimeout(r, 50));
  };
  const onExit = (): void => {
    const n = pid();
    if (n !== undefined) process.kill(n, 'SIGKILL');
  };
  process.once('exit', onExit);
  const self: PrivateKafka = {
    brokers: `127.0.0.1:${port}`,
    up: () =>
      new Promise((resolve, reject) =>
        execFile('bash', [path.join(REPO, 'scripts/infra.sh'), 'up', 'kafka'], { env, timeout: 180_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`infra.sh up kafka (PITWALL_HOME=${home}) failed: ${err.message}\n${stdout}${stderr}`)) : resolve(),
        ),
      ),
    kill,
    async stop() {
      await kill();
      process.off('exit', onExit);
      mkdirSync(ARTIFACTS, { recursive: true });
      try {
        cpSync(path.join(home, 'logs'), path.join(ARTIFACTS, `kafka-${id}-logs`), { recursive: true });
      } catch {
        // no logs
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
  try {
    await self.up();
  } catch (err) {
    await self.stop();
    throw err;
  }
  return self;
}
