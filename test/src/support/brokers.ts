/**
 * The MQTT brokers the contract suites run against, behind one interface: Mosquitto (the committed
 * configuration) and HiveMQ CE (infra/hivemq: the same identities and ACL in an embedded
 * extension). Each runs privately for a test: its own port, data and log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, waitFor } from './stack.js';
export interface PrivateBroker {
  readonly kind: BrokerKind;
  readonly url: string;
  readonly port: number;
  /** How long after a client's subscription the broker has it on disk (kill -9 then keeps it). */
  readonly savedAfterMs: number;
  /** Starts the broker; resolves once it accepts connections. */
  start(): Promise<void>;
  /** kill -9; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Graceful restart (SIGTERM, then start): the ACL and CRL are read again. */
  reload(): Promise<void>;
  running(): boolean;
  /** Kills it, keeps its log in test-artifacts and deletes its folder. */
  stop(): Promise<void>;
}

export type BrokerKind = 'mosquitto' | 'hivemq';

export interface BrokerImplementation {
  readonly kind: BrokerKind;
  start(id: string): Promise<PrivateBroker>;
}

const ALL: readonly BrokerImplementation[] = [
  { kind: 'mosquitto', start: async (id) => (await import('./mosquitto.js')).startPrivateMosquitto(id) },
  { kind: 'hivemq', start: async (id) => (await import('./hivemq.js')).startPrivateHiveMQ(id) },
];

/**
 * The broker implementations the contract suites run against, for `for (const broker of BROKERS)
 * describe(...)`: all of them, or those named in PITWALL_TEST_BROKERS (`mosquitto,hivemq`).
 */
export const BROKERS: readonly BrokerImplementation[] = selectBrokers(process.env.PITWALL_TEST_BROKERS);

export function selectBrokers(names: string | undefined): readonly BrokerImplementation[] {
  if (names === undefined || names.trim() === '') return ALL;
  const wanted = names.split(',').map((n) => n.trim());
  const unknown = wanted.filter((n) => !ALL.some((b) => b.kind === n));
  if (unknown.length > 0) throw new Error(`PITWALL_TEST_BROKERS: unknown broker ${unknown.join(', ')} (known: ${ALL.map((b) => b.kind).join(', ')})`);
  return ALL.filter((b) => wanted.includes(b.kind));
}

/**
 * The process side of a private broker: `command` is spawned with its output in `logFile`,
 * `started()` says when it serves (polled); kill is kill -9, reload a SIGTERM then start, stop
 * kills it, keeps its log as test-artifacts/<artifact> and deletes `dir`. The process dies with the
 * test process.
 */
export function brokerProcess(o: {
  name: string;
  command: () => { cmd: string; args: string[] };
  started: () => Promise<boolean> | boolean;
  startTimeoutMs: number;
  logFile: string;
  artifact: string;
  dir: string;
}): Pick<PrivateBroker, 'start' | 'kill' | 'reload' | 'running' | 'stop'> {
  const log = createWriteStream(o.logFile, { flags: 'a' });
  let proc: ChildProcess | undefined;
  const cleanup = (): void => {
    proc?.kill('SIGKILL');
  };
  process.once('exit', cleanup);
  const alive = (p: ChildProcess | undefined): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null;
  const end = async (p: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> => {
    if (!alive(p)) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await gone;
  };
  const self = {
    async start() {
      if (alive(proc)) return;
      const { cmd, args } = o.command();
      const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      p.stdout.pipe(log, { end: false });
      p.stderr.pipe(log, { end: false });
      const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new Error(`${o.name} exited with ${code}; see ${o.logFile}`))));
      exited.catch(() => {});
      await Promise.race([waitFor(o.name, async () => (await o.started()) || undefined, o.startTimeoutMs, 50), exited]);
    },
    kill: () => end(proc, 'SIGKILL'),
    async reload() {
      await end(proc, 'SIGTERM');
      await self.start();
    },
    running: () => alive(proc),
    async stop() {
      await end(proc, 'SIGKILL');
      process.off('exit', cleanup);
      log.end();
      mkdirSync(ARTIFACTS, { recursive: true });
      try {
        copyFileSync(o.logFile, path.join(ARTIFACTS, o.artifact));
      } catch {
        // nothing logged
      }
      rmSync(o.dir, { recursive: true, force: true });
    },
  };
  return self;
}
