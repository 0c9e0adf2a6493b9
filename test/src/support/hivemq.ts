/**
 * A private HiveMQ CE for tests: `scripts/infra.sh hivemq-prepare` installs it (cached) and writes
 * its configuration for a free port from the committed infra/hivemq/config.xml and the shared fleet
 * CA; the test runs the JVM itself so that it can kill -9 it. Folder <repo>/.pitwall/test-hivemq/<id>.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, REPO } from './stack.js';
import { identityFiles, registerBroker, SHARED_PKI } from './identities.js';
import { brokerProcess, type PrivateBroker } from './brokers.js';

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
  let starts = 0;
  const self: PrivateBroker = {
    kind: 'hivemq',
    url,
    port,
    // File persistence writes sessions and subscriptions as they change.
    savedAfterMs: 2_000,
    ...brokerProcess({
      name: `HiveMQ on port ${port}`,
      command: () => {
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
        return { cmd: process.env.PITWALL_JAVA ?? 'java', args };
      },
      // Its log says so once per start (the port alone opens before the extension is up).
      started: () => {
        try {
          return readFileSync(logFile, 'utf8').split('pitwall-hivemq started').length - 1 >= starts;
        } catch {
          return false;
        }
      },
      startTimeoutMs: 60_000,
      logFile,
      artifact: `hivemq-${id}.log`,
      dir,
    }),
  };
  await self.start();
  return self;
}
