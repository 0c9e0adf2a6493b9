/**
 * A private Mosquitto for tests that kill or reconfigure the broker, so the shared one is never
 * touched. It runs the committed infra/mosquitto/mosquitto.conf with the listener and persistence
 * path rewritten as scripts/infra.sh does (plus `extra` lines), on a free port, from a folder of its
 * own (<repo>/.pitwall/test-mosquitto/<id>). kill() is kill -9; start() starts it again on the same
 * port and data; stop() kills it, copies its log to test-artifacts and deletes the folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, REPO } from './stack.js';
import { identityFiles, registerBroker, SHARED_PKI } from './identities.js';
import { brokerProcess, type PrivateBroker } from './brokers.js';

export interface PrivateMosquitto extends PrivateBroker {
  readonly kind: 'mosquitto';
  /** The configuration it runs. */
  readonly config: string;
}

/**
 * The committed configuration for a private run: listener, persistence path, the fleet CA's folder
 * (`pkiDir`, the shared one by default) and the committed ACL file, then `extra` lines.
 */
export function mosquittoConfig(port: number, dataDir: string, extra: readonly string[] = [], pkiDir = SHARED_PKI): string {
  const committed = readFileSync(path.join(REPO, 'infra/mosquitto/mosquitto.conf'), 'utf8');
  const lines = committed
    .replace(/^listener .*/m, `listener ${port} 127.0.0.1`)
    .replace(/^persistence_location .*/m, `persistence_location ${dataDir}/`)
    .replaceAll('/mosquitto/pki/', `${pkiDir}/`)
    .replaceAll('/mosquitto/config/', `${path.join(REPO, 'infra/mosquitto')}/`)
    .split('\n');
  // Debian's mosquitto drops to user "mosquitto" when started as root (infra.sh does the same).
  if (process.getuid?.() === 0) lines.push('user root');
  return [...lines, ...extra, ''].join('\n');
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

export async function startPrivateMosquitto(id: string, opts: { extra?: readonly string[] } = {}): Promise<PrivateMosquitto> {
  const dir = path.join(REPO, '.pitwall/test-mosquitto', id);
  const data = path.join(dir, 'data');
  mkdirSync(data, { recursive: true });
  const port = await freePort();
  const config = mosquittoConfig(port, data, opts.extra);
  const confFile = path.join(dir, 'mosquitto.conf');
  writeFileSync(confFile, config);
  const self: PrivateMosquitto = {
    kind: 'mosquitto',
    url: `mqtts://127.0.0.1:${port}`,
    port,
    config,
    // Sessions and subscriptions are written every autosave_interval seconds.
    savedAfterMs: Number(/^autosave_interval (\d+)/m.exec(config)?.[1] ?? 1800) * 1000,
    ...brokerProcess({
      name: `mosquitto on port ${port}`,
      command: () => ({ cmd: 'mosquitto', args: ['-c', confFile] }),
      started: () => accepts(port),
      startTimeoutMs: 10_000,
      logFile: path.join(dir, 'mosquitto.log'),
      artifact: `mosquitto-${id}.log`,
      dir,
    }),
  };
  registerBroker(self.url, SHARED_PKI);
  await identityFiles(self.url, 'server', 'broker'); // the CA and the broker's certificate, if scripts/infra.sh has not made them
  await self.start();
  return self;
}
