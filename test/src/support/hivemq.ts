/**
 * A private HiveMQ CE for tests: `scripts/infra.sh hivemq-prepare` installs it (cached) and writes
 * its configuration for a free port from the committed infra/hivemq/config.xml and the shared fleet
 * CA; the test runs the JVM itself so that it can kill -9 it. Folder <repo>/.pitwall/test-hivemq/<id>.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ARTIFACTS, freePort, REPO, waitFor } from './stack.js';
import { identityFiles, registerBroker, SHARED_PKI } from './identities.js';
import type { PrivateBroker } from './brokers.js';

const run = promisify(execFile);

export async function startPrivateHiveMQ(id: string): Promise<PrivateBroker> {
  const dir = path.join(REPO, '.pitwall/test-hivemq', id);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `mqtts://127.0.0.1:${port}`;
  registerBroker(url, SHARED_PKI);
  await identityFiles(url, 'server', 'broker'); // the CA and the broker's certificate, if scripts/infra.sh has not made them
  const prepared = await run('bash', [path.join(REPO, 'scripts/infra.sh'), 'hivemq-prepare', dir, String(port)], {
    env: { ...process.env, PITWALL_PKI_DIR: SHARED_PKI },
    maxBuffer: 1 << 20,
  });
  const classpath = prepared.stdout.trim().split('\n').pop()!;
  const logFile = path.join(dir, 'hivemq.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  let proc: ChildProcess | undefined;
  const cleanup = (): void => {
    proc?.kill('SIGKILL');
  };
  process.once('exit', cleanup);
  const started = (): boolean => {
    try {
      return readFileSync(logFile, 'utf8').split('pitwall-hivemq started').length - 1 >= starts;
    } catch {
      return false;
    }
  };
  let starts = 0;

  const self: PrivateBroker = {
    kind: 'hivemq',
    url,
    port,
    // File persistence writes sessions and subscriptions as they change.
    savedAfterMs: 2_000,
    async start() {
      if (self.running()) return;
      starts++;
      const args = [
        '-Xmx384m',
        '-cp',
        classpath,
        'io.pitwall.hivemq.PitwallHiveMQ',
        path.join(dir, 'conf'),
        path.join(dir, 'data'),
        path.join(REPO, 'infra/mosquitto/acl'),
        path.join(SHARED_PKI, 'crl.pem'),
      ];
      const p = spawn(process.env.PITWALL_JAVA ?? 'java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      p.stdout.pipe(log, { end: false });
      p.stderr.pipe(log, { end: false });
      const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`HiveMQ exited with ${code}; see ${logFile}`))));
      exited.catch(() => {});
      await Promise.race([waitFor(`HiveMQ on port ${port}`, () => started() || undefined, 60_000, 100), exited]);
    },
    async kill() {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    },
    async reload() {
      const p = proc;
      if (p && p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await gone;
      }
      await self.start();
    },
    running: () => proc !== undefined && proc.exitCode === null && proc.signalCode === null,
    async stop() {
      await self.kill();
      process.off('exit', cleanup);
      log.end();
      mkdirSync(ARTIFACTS, { recursive: true });
      try {
        copyFileSync(logFile, path.join(ARTIFACTS, `hivemq-${id}.log`));
      } catch {
        // nothing logged
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await self.start();
  return self;
}
