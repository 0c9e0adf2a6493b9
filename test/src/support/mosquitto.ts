/**
 * A private Mosquitto for tests that kill or reconfigure the broker, so the shared one is never
 * touched. It runs the committed infra/mosquitto/mosquitto.conf with the listener and persistence
 * path rewritten as scripts/infra.sh does (plus `extra` lines), on a free port, from a folder of its
 * own (<repo>/.pitwall/test-mosquitto/<id>). kill() is kill -9; start() starts it again on the same
 * port and data; stop() kills it, copies its log to test-artifacts and deletes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ARTIFACTS, freePort, REPO, waitFor } from './stack.js';
import { identityFiles, registerBroker, SHARED_PKI } from './identities.js';
import type { PrivateBroker } from './brokers.js';

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
  const logFile = path.join(dir, 'mosquitto.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  let proc: ChildProcess | undefined;
  const cleanup = (): void => {
    proc?.kill('SIGKILL');
  };
  process.once('exit', cleanup);

  const self: PrivateMosquitto = {
    kind: 'mosquitto',
    url: `mqtts://127.0.0.1:${port}`,
    port,
    config,
    // Sessions and subscriptions are written every autosave_interval seconds.
    savedAfterMs: Number(/^autosave_interval (\d+)/m.exec(config)?.[1] ?? 1800) * 1000,
    async start() {
      if (self.running()) return;
      const p = spawn('mosquitto', ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      p.stdout.pipe(log, { end: false });
      p.stderr.pipe(log, { end: false });
      const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}; see ${logFile}`))));
      exited.catch(() => {});
      await Promise.race([waitFor(`mosquitto on port ${port}`, async () => (await accepts(port)) || undefined, 10_000, 50), exited]);
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
        copyFileSync(logFile, path.join(ARTIFACTS, `mosquitto-${id}.log`));
      } catch {
        // nothing logged
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  registerBroker(self.url, SHARED_PKI);
  await identityFiles(self.url, 'server', 'broker'); // the CA and the broker's certificate, if scripts/infra.sh has not made them
  await self.start();
  return self;
}
