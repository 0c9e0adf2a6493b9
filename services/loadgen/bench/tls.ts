/**
 * What TLS with client certificates costs against plain TCP, side by side in one run:
 * `npx turbo run build && npm run bench -w @pitwall/loadgen` (needs scripts/infra.sh up: the shared
 * Kafka, registry and fleet CA; skipped with a message when they are not there).
 *
 * One private Mosquitto configuration (the committed infra/mosquitto/mosquitto.conf, spawned here)
 * on two free ports of 127.0.0.1: the TLS listener exactly as committed (client certificate of the
 * fleet CA, CN as username, the ACL), and a plain listener with anonymous access that exists only
 * in this benchmark's broker (per_listener_settings keeps the two apart). The broker is started
 * afresh for each phase, so each starts from the same memory. Then, plain first and TLS second:
 *   1. an ingest (services/ingest, its own process) on that listener, with its own certificate
 *      over TLS (issued in memory, written to the temp folder), producing to private topics of
 *      the shared Kafka;
 *   2. `npm run loadtest` with BENCH_CARS car connections (default 1,000) over BENCH_WORKERS worker
 *      processes (2), BENCH_RATE Hz each (1; 5 Hz saturated a shared 2-core machine) for BENCH_DURATION_S seconds (60), opened as fast as
 *      they go (BENCH_CONNECT_RATE, default unlimited); over TLS each car has its own certificate
 *      (CN = its vehicle id), issued in memory by the workers before the run;
 *   3. measured: connections/s over the ramp and open -> CONNACK latency; readings/s acknowledged
 *      (PUBACK) and arriving in ingest's telemetry topic, and whether every acknowledged reading
 *      is there; Mosquitto's RSS (/proc VmRSS) before the cars connect and while they are all up,
 *      per connection; CPU of Mosquitto, ingest and the load generator while publishing; the
 *      certificates' cost per 1,000 cars.
 * Prints a table with the TLS/plain ratios (goal: TLS keeps at least 80 % of plain throughput at
 * 1,000 cars) and writes JSON to BENCH_OUT or bench-results/loadgen-tls-<time>.json.
 *
 * Bounded: each phase ends with its load test (duration + at most 20 s of drain), the whole run is
 * killed after BENCH_TIMEOUT_S (900). Targets 127.0.0.1 only. Everything it started (Mosquitto,
 * ingest, load test) is stopped and its temp folder (unless BENCH_KEEP=1: logs, JSONL) and Kafka
 * topics deleted, also on Ctrl-C.
 * A measurement, not a test: it never fails on the numbers.
 *
 * BENCH_CONSUMER=both compares ingest with a bare MQTT subscriber that only counts (the upper bound
 * for ingest, goal ingest >= 0.7x): on each listener the subscriber takes the load first, then
 * ingest, each from a fresh broker; BENCH_MODE=gateway with BENCH_CONNECTIONS (16) publishes the
 * cars over a few gateway connections, so that the consumer saturates before the load generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  configReader,
  createSchemaStore,
  defaultSchemasDir,
  deploySchemas,
  kafkaSecurityOptions,
  localAdminEnv,
  readCommonConfig,
  readKafkaSecurity,
  readRegistryCredentials,
  repoRoot,
} from '@pitwall/common';
import { defaultPkiDir } from '../src/args.js';
import type { SecondRecord } from '../src/second.js';
import type { Summary } from '../src/summary.js';

const REPO = repoRoot(import.meta.url);
const env = process.env;
const int = (name: string, fallback: number, min: number, max: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
  return n;
};
const CARS = int('BENCH_CARS', 1000, 1, 20_000);
const WORKERS = int('BENCH_WORKERS', 2, 1, 16);
const RATE_HZ = int('BENCH_RATE', 1, 0.1, 10);
const DURATION_S = int('BENCH_DURATION_S', 60, 10, 600);
const CONNECT_RATE = int('BENCH_CONNECT_RATE', 100_000, 1, 100_000);
const TIMEOUT_S = int('BENCH_TIMEOUT_S', 900, 60, 7200);
// Seconds the load test waits after publishing for acknowledgements and for the topic to catch up
// (a saturated run needs longer: the backlog drains at ingest's rate).
const DRAIN_S = int('BENCH_DRAIN_S', 20, 5, 600);
const KAFKA = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')[0]!.trim();
const REGISTRY = env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
const PKI = defaultPkiDir(env);
// Kafka and the registry as the local operator (scripts/infra.sh's admin identities) unless the
// environment names others: ingest and the load generator use this benchmark's own topics, which no
// service identity's ACLs cover. The MQTT side, what this measures, is as in production.
const OPERATOR_ENV: Record<string, string> = Object.fromEntries(
  Object.entries({ ...localAdminEnv(env.PITWALL_HOME || path.join(REPO, '.pitwall')), ...env }).filter(
    (e): e is [string, string] => e[1] !== undefined && /^(KAFKA_SECURITY_PROTOCOL|KAFKA_SSL_CA_FILE|KAFKA_SASL_|SCHEMA_REGISTRY_USERNAME|SCHEMA_REGISTRY_PASSWORD)/.test(e[0]),
  ),
);
const KAFKA_IDENTITY_ENV = Object.fromEntries(Object.entries(OPERATOR_ENV).filter(([k]) => k.startsWith('KAFKA_')));
const operator = (() => {
  const c = configReader(OPERATOR_ENV);
  return c.done({ kafka: readKafkaSecurity(c), registry: readRegistryCredentials(c) });
})();
const ID = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
// BENCH_MODE=gateway: BENCH_CONNECTIONS gateway connections carry the BENCH_CARS cars (cheap to
// publish from, to saturate the consumer rather than the load generator).
const MODE = env.BENCH_MODE ?? 'car';
if (MODE !== 'car' && MODE !== 'gateway') throw new Error(`BENCH_MODE must be car or gateway, got "${MODE}"`);
const CONNECTIONS = int('BENCH_CONNECTIONS', 16, 1, 20_000);
// Who takes the readings off the broker: ingest (to Kafka), or a bare MQTT subscriber that only
// counts (the upper bound for ingest); `both` runs the subscriber, then ingest, on each listener.
const CONSUMERS: readonly Consumer[] = (() => {
  const c = env.BENCH_CONSUMER ?? 'ingest';
  if (c === 'both') return ['subscriber', 'ingest'];
  if (c === 'ingest' || c === 'subscriber') return [c];
  throw new Error(`BENCH_CONSUMER must be ingest, subscriber or both, got "${c}"`);
})();

type Phase = 'plain' | 'tls';
type Consumer = 'ingest' | 'subscriber';

interface Sample {
  at: number;
  mosquittoRss: number;
  mosquittoCpuTicks: number;
  ingestCpuTicks: number;
}

interface PhaseResult {
  phase: Phase;
  consumer: Consumer;
  url: string;
  loadAvgAtStart: number[];
  loadtestExit: number | null;
  connections: { target: number; up: number; rampS: number | null; perS: number | null; connectMsP50: number | null; connectMsP99: number | null; errors: number };
  readings: {
    offeredPerS: number;
    ackedPerS: number;
    inTopicPerS: number | null;
    acked: number;
    failed: number;
    allInTopic: boolean | null;
    inTopic: number | null;
    /** Taken off the broker by the consumer: median of its seconds while publishing, and in all. */
    consumedPerS: number | null;
    consumed: number | null;
  };
  mosquitto: { rssBeforeMB: number; rssUpMB: number; rssPerConnectionKB: number; cpuPct: number | null; rampCpuPct: number | null; dropped: number | null };
  /** The consumer's CPU: ingest's process, or this process for the bare subscriber. */
  ingest: { cpuPct: number | null };
  loadgen: { cpuPct: number | null; rssMB: number | null; rssPerConnectionKB: number | null };
  certificates: Summary['identities'];
}

// ---------------------------------------------------------------- processes and cleanup
const children = new Set<ChildProcess>();
let tmp: string | undefined;
const topics = new Set<string>();

function start(cmd: string, args: string[], opts: { env: Record<string, string>; log: string; cwd?: string }): ChildProcess {
  const log = createWriteStream(opts.log, { flags: 'a' });
  const p = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout.pipe(log, { end: false });
  p.stderr.pipe(log, { end: false });
  children.add(p);
  p.once('exit', () => {
    children.delete(p);
    log.end();
  });
  return p;
}

const exited = (p: ChildProcess): Promise<number | null> => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code))));

async function stop(p: ChildProcess, graceMs = 15_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited(p);
  clearTimeout(timer);
}

async function cleanup(): Promise<void> {
  await Promise.all([...children].map((p) => stop(p, 5_000)));
  if (topics.size > 0) {
    const admin = new Kafka({ clientId: `pitwall-bench-${ID}`, brokers: [KAFKA], ...kafkaSecurityOptions(operator.kafka), logLevel: logLevel.NOTHING }).admin();
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const mine = [...topics].filter((t) => existing.has(t));
      if (mine.length > 0) await admin.deleteTopics({ topics: mine, timeout: 10_000 });
    } catch (err) {
      console.error(`warning: could not delete the benchmark's topics (${[...topics].join(', ')}): ${(err as Error).message}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  if (tmp && env.BENCH_KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
  else if (tmp) console.log(`kept ${tmp} (BENCH_KEEP=1): delete it when done`);
}

// ---------------------------------------------------------------- helpers
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const accepts = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, host);
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number, p?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p && (p.exitCode !== null || p.signalCode !== null)) throw new Error(`${what}: the process exited (${p.exitCode ?? p.signalCode})`);
    if (await ok()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** VmRSS in bytes and utime + stime in clock ticks of a process, from /proc. */
function procStat(pid: number): { rss: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}
const TICKS_PER_S = 100; // USER_HZ on Linux

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
};
const MB = 2 ** 20;
const r1 = (x: number): number => Math.round(x * 10) / 10;

// ---------------------------------------------------------------- the broker
function brokerConfig(committed: string, o: { tlsPort: number; plainPort: number; data: string; certFile: string; keyFile: string }): string {
  const lines = committed
    .replace(/^listener .*/m, `listener ${o.tlsPort} 127.0.0.1`)
    .replace(/^persistence_location .*/m, `persistence_location ${o.data}/`)
    .replaceAll('/mosquitto/pki/issued/server/broker.pem', o.certFile)
    .replaceAll('/mosquitto/pki/issued/server/broker.key', o.keyFile)
    .replaceAll('/mosquitto/pki/', `${PKI}/`)
    .replaceAll('/mosquitto/config/', `${path.join(REPO, 'infra/mosquitto')}/`);
  return [
    '# The committed configuration for the TLS benchmark, plus a plain listener for comparison.',
    '# per_listener_settings: allow_anonymous and acl_file apply to the listener they follow.',
    'per_listener_settings true',
    lines,
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    '',
    '# Plain TCP without certificates or ACL: in this private benchmark broker only, never in infra/.',
    `listener ${o.plainPort} 127.0.0.1`,
    'protocol mqtt',
    'allow_anonymous true',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- one phase
/**
 * A bare MQTT 5 subscriber on ingest's terms (its identity, a persistent session, shared
 * subscription, QoS 1, receive maximum 10,000) that only counts what arrives, per wall second.
 */
async function startSubscriber(url: string, tls: Record<string, string>, group: string): Promise<{ perSecond: Map<number, number>; total(): number; stop(): Promise<void> }> {
  const { default: mqtt } = await import('mqtt');
  const tlsOpts = tls.MQTT_CERT_FILE ? { ca: readFileSync(tls.MQTT_CA_FILE!), cert: readFileSync(tls.MQTT_CERT_FILE), key: readFileSync(tls.MQTT_KEY_FILE!) } : {};
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: `bench-${ID}-${group}`,
    clean: false,
    properties: { sessionExpiryInterval: 30, receiveMaximum: 10_000 },
    reconnectPeriod: 1000,
    ...tlsOpts,
  });
  const perSecond = new Map<number, number>();
  let total = 0;
  client.on('message', () => {
    total++;
    const sec = Math.floor(Date.now() / 1000);
    perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1);
  });
  await client.subscribeAsync(`$share/${group}/vehicles/+/telemetry`, { qos: 1 });
  return { perSecond, total: () => total, stop: () => client.endAsync(true).then(() => undefined) };
}

async function runPhase(phase: Phase, consumer: Consumer, broker: { pid: number; url: Record<Phase, string> }, ingestTls: Record<string, string>): Promise<PhaseResult> {
  const url = broker.url[phase];
  const base = `bench.${ID}.${phase}.${consumer}`;
  const topicEnv = {
    TOPIC_TELEMETRY: `${base}.vehicle.telemetry`,
    TOPIC_TELEMETRY_DLQ: `${base}.vehicle.telemetry.dlq`,
    TOPIC_TELEMETRY_LATE: `${base}.vehicle.telemetry.late`,
    TOPIC_RECEIPTS: `${base}.vehicle.receipts`,
  };
  for (const t of Object.values(topicEnv)) topics.add(t);
  // The registry's deploy step for these topics: ingest only looks its schemas up.
  await deploySchemas(createSchemaStore(REGISTRY, operator.registry), readCommonConfig(configReader(topicEnv), 'bench').topics, defaultSchemasDir());
  const loadAvgAtStart = os.loadavg().map(r1);
  const drops = await watchBrokerDrops(broker.url.plain);
  console.log(`\n== ${phase}, ${consumer}: ${url} (load average ${loadAvgAtStart.join(' ')})`);

  const subscriber = consumer === 'subscriber' ? await startSubscriber(url, phase === 'tls' ? ingestTls : {}, `bench-${ID}-${phase}-sub`) : undefined;
  // ingest on this listener
  const healthPort = await freePort();
  const ingest = subscriber
    ? undefined
    : // BENCH_INGEST_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles ingest under load.
      start(process.execPath, [...(env.BENCH_INGEST_NODE_ARGS ?? '').split(' ').filter(Boolean), path.join(REPO, 'services/ingest/dist/src/main.js')], {
        cwd: path.join(REPO, 'services/ingest'),
        log: path.join(tmp!, `ingest-${phase}.log`),
        env: {
          PATH: env.PATH ?? '',
          KAFKA_BROKERS: KAFKA,
          ...KAFKA_IDENTITY_ENV,
          SCHEMA_REGISTRY_URL: REGISTRY,
          MQTT_URL: url,
          ...(phase === 'tls' ? ingestTls : {}),
          HEALTH_PORT: String(healthPort),
          LOG_LEVEL: 'warn',
          // Tuning under test (INGEST_LINGER_MS, INGEST_BATCH_MAX, INGEST_RECEIVE_MAXIMUM, ...) passes through.
          ...Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('INGEST_') && e[1] !== undefined)),
          ...topicEnv,
          INGEST_CLIENT_ID: `bench-${ID}-${phase}-ingest`,
          INGEST_SUBSCRIPTION: `$share/bench-${ID}-${phase}/vehicles/+/telemetry`,
          INGEST_RECEIPT_SUBSCRIPTION: `$share/bench-${ID}-${phase}/vehicles/+/alerts/receipt`,
          INGEST_SESSION_EXPIRY_S: '30',
        },
      });
  const ready = async (): Promise<boolean> => {
    try {
      return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200;
    } catch {
      return false;
    }
  };
  if (ingest) await until(`ingest (${phase}) to be ready (log ${path.join(tmp!, `ingest-${phase}.log`)})`, ready, 90_000, ingest);
  await sleep(2000);

  // samples of Mosquitto and ingest every 500 ms
  const samples: Sample[] = [];
  const sample = (): void => {
    try {
      const m = procStat(broker.pid);
      const i = procStat(ingest?.pid ?? process.pid);
      samples.push({ at: Date.now(), mosquittoRss: m.rss, mosquittoCpuTicks: m.cpuTicks, ingestCpuTicks: i.cpuTicks });
    } catch {
      // a process just ended
    }
  };
  sample();
  const rssBefore = samples[0]!.mosquittoRss;
  const sampler = setInterval(sample, 500);

  // the load test
  const out = path.join(tmp!, `loadtest-${phase}.jsonl`);
  const args = [
    path.join(REPO, 'services/loadgen/dist/src/main.js'),
    ...(MODE === 'gateway' ? ['--mode', 'gateway', '--connections', String(CONNECTIONS)] : []),
    // Nothing reaches Kafka without ingest: checking the topic would only wait for the drain.
    ...(subscriber ? ['--no-verify'] : []),
    '--cars',
    String(CARS),
    '--workers',
    String(WORKERS),
    '--rate',
    String(RATE_HZ),
    '--duration',
    String(DURATION_S),
    '--drain',
    String(DRAIN_S),
    '--connect-rate',
    String(CONNECT_RATE),
    '--failures',
    '0',
    '--prefix',
    `bench${ID}${phase}${consumer === 'subscriber' ? 's' : 'i'}`,
    '--out',
    out,
    '--mqtt-url',
    url,
    '--pki',
    PKI,
    '--groups',
    `${base}.none`,
  ];
  const loadtest = start(process.execPath, args, {
    log: path.join(tmp!, `loadtest-${phase}.log`),
    env: {
      PATH: env.PATH ?? '',
      KAFKA_BROKERS: KAFKA,
      ...KAFKA_IDENTITY_ENV,
      SCHEMA_REGISTRY_URL: REGISTRY,
      TOPIC_TELEMETRY: topicEnv.TOPIC_TELEMETRY,
      // Stages after ingest do not run here: names nobody uses (Kafka does not create topics on reads).
      TOPIC_FEATURES: `${base}.none.features`,
      TOPIC_SCORES: `${base}.none.scores`,
      TOPIC_ALERTS: `${base}.none.alerts`,
      TOPIC_INCIDENTS: `${base}.none.incidents`,
    },
  });
  loadtest.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (/^(loadtest| {2}issu|t=\d+s (ramp|drain)|t=\d*[05]s run|connect ramp|certificates|readings|check telemetry)/.test(line)) console.log(`  ${line}`);
  });
  const killer = setTimeout(() => loadtest.kill('SIGKILL'), (DURATION_S + DRAIN_S + 600) * 1000);
  const code = await exited(loadtest);
  clearTimeout(killer);
  clearInterval(sampler);
  if (ingest) await stop(ingest);
  const consumedTotal = subscriber?.total();
  await subscriber?.stop();
  const dropped = await drops.stop();

  const lines = existsSync(out)
    ? readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string })
    : [];
  const summary = lines.find((l): l is Summary => l.type === 'summary');
  const startRecord = lines.find((l): l is { type: 'start'; clock: { wallStart: number } } => l.type === 'start');
  const seconds = lines.filter((l): l is SecondRecord => l.type === 'second');
  if (!summary) {
    const tail = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').slice(-25).join('\n') : '(no log)');
    throw new Error(
      `the ${phase} load test wrote no summary (exit ${code}); its log ends:\n${tail(path.join(tmp!, `loadtest-${phase}.log`))}\ningest's log ends:\n${tail(path.join(tmp!, `ingest-${phase}.log`))}`,
    );
  }

  // While every car is connected and publishing: the 'run' seconds.
  const run = seconds.filter((s) => s.phase === 'run');
  const from = run.length > 0 ? Date.parse(run[0]!.at) : 0;
  const to = run.length > 0 ? Date.parse(run[run.length - 1]!.at) : 0;
  const inRun = samples.filter((s) => s.at >= from && s.at <= to);
  const rssUp = median(inRun.map((s) => s.mosquittoRss));
  const cpuPct = (key: 'mosquittoCpuTicks' | 'ingestCpuTicks', window = inRun): number | null => {
    if (window.length < 2) return null;
    const a = window[0]!;
    const b = window[window.length - 1]!;
    return Math.round(((b[key] - a[key]) / TICKS_PER_S / ((b.at - a.at) / 1000)) * 100);
  };
  // The connect ramp: from the run's start until the last car's first CONNACK (one sample either side).
  const rampFrom = startRecord?.clock.wallStart ?? 0;
  const rampTo = rampFrom + (summary.connections.rampS ?? 0) * 1000;
  const inRamp = samples.filter((s) => s.at >= rampFrom - 500 && s.at <= rampTo + 500);
  const mean = (xs: number[]): number | null => (xs.length === 0 ? null : Math.round(xs.reduce((x, y) => x + y, 0) / xs.length));
  const loadgenRss = mean(run.map((s) => s.loadgen.rssMB));
  const t = summary.checks.telemetry;
  // Per second while publishing: what the consumer took off the broker between the run's first and
  // last record, over that time (the topic's end offsets come in bursts, so not a median of seconds).
  const runS = (to - from) / 1000;
  const offsetAt = (r: SecondRecord | undefined): number | null => (typeof r?.stages.telemetry.offset === 'number' ? r.stages.telemetry.offset : null);
  const [firstOffset, lastOffset] = [offsetAt(run[0]), offsetAt(run[run.length - 1])];
  const consumedPerS =
    runS <= 0
      ? null
      : subscriber
        ? [...subscriber.perSecond].filter(([sec]) => sec * 1000 >= from && (sec + 1) * 1000 <= to).reduce((sum, [, n]) => sum + n, 0) / (Math.floor(to / 1000) - Math.ceil(from / 1000))
        : firstOffset !== null && lastOffset !== null
          ? (lastOffset - firstOffset) / runS
          : null;
  return {
    phase,
    consumer,
    url,
    loadAvgAtStart,
    loadtestExit: code,
    connections: {
      target: summary.connections.target,
      up: summary.connections.peakUp,
      rampS: summary.connections.rampS,
      perS: summary.connections.ratePerS,
      connectMsP50: summary.connections.connectMs.p50,
      connectMsP99: summary.connections.connectMs.p99,
      errors: summary.connections.connectErrors,
    },
    readings: {
      offeredPerS: summary.readings.offeredPerS,
      ackedPerS: summary.readings.ackedPerS,
      inTopicPerS: summary.stages.telemetry.perS,
      acked: summary.readings.acked,
      failed: summary.readings.failed + summary.readings.unrouted,
      allInTopic: t.ok,
      inTopic: 'found' in t ? t.found : null,
      consumedPerS: consumedPerS !== null && Number.isFinite(consumedPerS) ? Math.round(consumedPerS) : null,
      consumed: consumedTotal ?? ('found' in t ? t.found : null),
    },
    mosquitto: {
      rssBeforeMB: r1(rssBefore / MB),
      rssUpMB: r1(rssUp / MB),
      rssPerConnectionKB: r1((rssUp - rssBefore) / 1024 / CARS),
      cpuPct: cpuPct('mosquittoCpuTicks'),
      rampCpuPct: cpuPct('mosquittoCpuTicks', inRamp),
      dropped,
    },
    ingest: { cpuPct: cpuPct('ingestCpuTicks') },
    // The load generator's RSS includes its idle processes (~50 MB each): per connection is a rough upper bound.
    loadgen: { cpuPct: mean(run.map((s) => s.loadgen.cpuPct)), rssMB: loadgenRss, rssPerConnectionKB: loadgenRss === null ? null : r1((loadgenRss * 1024) / CARS) },
    certificates: summary.identities,
  };
}

/**
 * Watches the broker's $SYS/broker/publish/messages/dropped (messages dropped on queue or in-flight
 * limits since it started; acknowledged readings lost if ingest's queue overflowed) on the plain
 * listener, which has no ACL. Mosquitto sends it only when it changes, so the watch starts with the
 * phase; $SYS/broker/uptime (every 10 s) shows the watch works. stop(): the last count, 0 if only
 * uptime came, null if the broker's $SYS never arrived.
 */
async function watchBrokerDrops(url: string): Promise<{ stop(): Promise<number | null> }> {
  const { default: mqtt } = await import('mqtt');
  const client = await mqtt.connectAsync(url, { clientId: `bench-sys-${ID}-${Date.now()}`, reconnectPeriod: 0, connectTimeout: 5_000 }).catch(() => undefined);
  if (!client) return { stop: () => Promise.resolve(null) };
  let dropped: number | null = null;
  let alive = false;
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/uptime')) alive = true;
    else dropped = Number(payload.toString());
  });
  await client.subscribeAsync({ '$SYS/broker/publish/messages/dropped': { qos: 0 }, '$SYS/broker/uptime': { qos: 0 } });
  return {
    async stop() {
      const deadline = Date.now() + 12_000;
      while (!alive && dropped === null && Date.now() < deadline) await sleep(250);
      await client.endAsync(true).catch(() => undefined);
      return dropped ?? (alive ? 0 : null);
    },
  };
}

// ---------------------------------------------------------------- report
function table(plain: PhaseResult, tls: PhaseResult): string {
  const rows: [string, (p: PhaseResult) => number | null | undefined, string, 'higher' | 'lower' | ''][] = [
    ['connections up', (p) => p.connections.up, '', ''],
    ['connect rate (conn/s over the ramp)', (p) => p.connections.perS, '/s', 'higher'],
    ['ramp (s)', (p) => p.connections.rampS, ' s', 'lower'],
    ['open -> CONNACK p50 (ms)', (p) => p.connections.connectMsP50, ' ms', 'lower'],
    ['open -> CONNACK p99 (ms)', (p) => p.connections.connectMsP99, ' ms', 'lower'],
    ['readings offered (/s)', (p) => p.readings.offeredPerS, '/s', ''],
    ['readings acked (/s)', (p) => p.readings.ackedPerS, '/s', 'higher'],
    ['readings into ingest topic (/s)', (p) => p.readings.inTopicPerS, '/s', 'higher'],
    ['mosquitto RSS before (MB)', (p) => p.mosquitto.rssBeforeMB, ' MB', ''],
    ['mosquitto RSS, all up (MB)', (p) => p.mosquitto.rssUpMB, ' MB', 'lower'],
    ['mosquitto RSS per connection (KB)', (p) => p.mosquitto.rssPerConnectionKB, ' KB', 'lower'],
    ['mosquitto CPU, ramp (% of a core)', (p) => p.mosquitto.rampCpuPct, ' %', 'lower'],
    ['mosquitto CPU, all up (% of a core)', (p) => p.mosquitto.cpuPct, ' %', 'lower'],
    ['mosquitto: messages dropped on its limits', (p) => p.mosquitto.dropped, '', 'lower'],
    ['acknowledged readings not in the topic', (p) => (p.readings.inTopic === null ? null : p.readings.acked - p.readings.inTopic), '', 'lower'],
    ['ingest CPU, all up (% of a core)', (p) => p.ingest.cpuPct, ' %', 'lower'],
    ['loadgen CPU, all up (% of a core)', (p) => p.loadgen.cpuPct, ' %', 'lower'],
    ['loadgen RSS (MB, all processes)', (p) => p.loadgen.rssMB, ' MB', 'lower'],
  ];
  const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toLocaleString('en-US'));
  const out = [['', 'plain', 'TLS', 'TLS/plain']];
  for (const [name, f] of rows) {
    const a = f(plain);
    const b = f(tls);
    out.push([name, fmt(a), fmt(b), a && b !== null && b !== undefined ? (b / a).toFixed(2) : '-']);
  }
  const w = out[0]!.map((_, c) => Math.max(...out.map((r) => r[c]!.length)));
  return out.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]!) : cell.padStart(w[c]!))).join('  ')).join('\n');
}

/** BENCH_OUT, else bench-results/<name>-<time>.json. */
function writeResult(name: string, result: unknown): void {
  const outFile = env.BENCH_OUT ?? path.join(REPO, 'bench-results', `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 1) + '\n');
  console.log(`written to ${outFile}`);
}

// ---------------------------------------------------------------- main
async function preconditions(): Promise<string | undefined> {
  const [host, port] = [KAFKA.slice(0, KAFKA.lastIndexOf(':')), Number(KAFKA.slice(KAFKA.lastIndexOf(':') + 1))];
  if (!(await accepts(host, port))) return `Kafka does not answer on ${KAFKA} (scripts/infra.sh up)`;
  try {
    await fetch(REGISTRY.replace(/\/apis\/.*$/, '/'));
  } catch {
    return `the schema registry does not answer at ${REGISTRY}`;
  }
  if (!existsSync(path.join(PKI, 'ca.pem')) || !existsSync(path.join(PKI, 'ca.key'))) return `no fleet CA in ${PKI} (scripts/infra.sh up or npm run pki -- init)`;
  const which = spawn('mosquitto', ['-h'], { stdio: 'ignore' });
  const found = await new Promise<boolean>((r) => {
    which.once('error', () => r(false));
    which.once('exit', () => r(true));
  });
  if (!found) return 'mosquitto is not installed';
  for (const f of ['services/ingest/dist/src/main.js', 'services/loadgen/dist/src/main.js']) if (!existsSync(path.join(REPO, f))) return `${f} is not built (npx turbo run build)`;
  return undefined;
}

async function main(): Promise<number> {
  const missing = await preconditions();
  if (missing) {
    console.log(`loadgen TLS benchmark skipped: ${missing}`);
    return 0;
  }
  console.log(`loadgen TLS benchmark ${ID}: ${CARS} car connections over ${WORKERS} workers, ${RATE_HZ} Hz each for ${DURATION_S} s, plain then TLS`);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pitwall-bench-tls-'));
  const { openCa } = await import('@pitwall/common/pki');
  const ca = await openCa(PKI);
  // The broker's and ingest's certificates, in memory and in the temp folder only (not recorded in the CA's index).
  const writeId = (name: string, id: { certPem: string; keyPem: string }) => {
    writeFileSync(path.join(tmp!, `${name}.pem`), id.certPem);
    writeFileSync(path.join(tmp!, `${name}.key`), id.keyPem, { mode: 0o600 });
    return { certFile: path.join(tmp!, `${name}.pem`), keyFile: path.join(tmp!, `${name}.key`) };
  };
  const server = writeId('broker', await ca.issueEphemeral({ kind: 'server', name: 'bench-broker', hosts: ['127.0.0.1', 'localhost'] }));
  const ingestId = writeId('ingest', await ca.issueEphemeral({ kind: 'service', name: 'ingest' }));
  const ingestTls = { MQTT_CA_FILE: path.join(PKI, 'ca.pem'), MQTT_CERT_FILE: ingestId.certFile, MQTT_KEY_FILE: ingestId.keyFile };

  const [tlsPort, plainPort] = [await freePort(), await freePort()];
  const data = path.join(tmp, 'data');
  const conf = path.join(tmp, 'mosquitto.conf');
  writeFileSync(conf, brokerConfig(readFileSync(path.join(REPO, 'infra/mosquitto/mosquitto.conf'), 'utf8'), { tlsPort, plainPort, data, ...server }));
  // The broker starts afresh (empty data) for each phase: a process's RSS does not shrink back after a
  // phase (freed memory stays with the allocator), so the next phase's per-connection memory would be lost in it.
  const startBroker = async (phase: Phase): Promise<{ proc: ChildProcess; pid: number; url: Record<Phase, string> }> => {
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data);
    const proc = start('mosquitto', ['-c', conf], { env: { PATH: env.PATH ?? '' }, log: path.join(tmp!, `mosquitto-${phase}.log`) });
    await until(`mosquitto on ${tlsPort} and ${plainPort}`, async () => (await accepts('127.0.0.1', tlsPort)) && (await accepts('127.0.0.1', plainPort)), 10_000, proc);
    return { proc, pid: proc.pid!, url: { plain: `mqtt://127.0.0.1:${plainPort}`, tls: `mqtts://127.0.0.1:${tlsPort}` } };
  };

  // BENCH_LISTENERS=tls runs the TLS phase alone (an overload run, say); the table then has no ratios.
  const phases = (env.BENCH_LISTENERS ?? 'plain,tls').split(',').map((p) => p.trim());
  if (phases.some((p) => p !== 'plain' && p !== 'tls') || phases.length === 0) throw new Error(`BENCH_LISTENERS must list plain and/or tls, got "${env.BENCH_LISTENERS}"`);
  let plain: PhaseResult | undefined;
  let tls: PhaseResult | undefined;
  const bySubscriber: PhaseResult[] = [];
  for (const phase of phases as Phase[]) {
    for (const consumer of CONSUMERS) {
      if (plain || tls || bySubscriber.length > 0) await sleep(5000);
      const broker = await startBroker(phase);
      const r = await runPhase(phase, consumer, broker, ingestTls);
      await stop(broker.proc);
      if (consumer === 'subscriber') bySubscriber.push(r);
      else if (phase === 'plain') plain = r;
      else tls = r;
    }
  }
  if (CONSUMERS.length === 2)
    return compareWithSubscriber(
      bySubscriber,
      [plain, tls].filter((r): r is PhaseResult => r !== undefined),
    );
  if (!plain && !tls) {
    for (const r of bySubscriber)
      console.log(`\n${JSON.stringify({ phase: r.phase, consumer: r.consumer, readings: r.readings, mosquitto: r.mosquitto, subscriberCpuPct: r.ingest.cpuPct }, null, 1)}`);
    writeResult('loadgen-subscriber', { type: 'loadgen-subscriber-bench', id: ID, at: new Date().toISOString(), phases: bySubscriber });
    return 0;
  }
  if (!plain || !tls) {
    const only = (plain ?? tls)!;
    console.log(`\n${JSON.stringify({ phase: only.phase, readings: only.readings, mosquitto: only.mosquitto, ingest: only.ingest }, null, 1)}`);
    writeResult(`loadgen-${only.phase}`, { type: 'loadgen-tls-bench', id: ID, at: new Date().toISOString(), [only.phase]: only });
    return 0;
  }

  const ratio = (a: number | null, b: number | null): number | null => (a && b !== null ? Math.round((b / a) * 1000) / 1000 : null);
  const result = {
    type: 'loadgen-tls-bench',
    id: ID,
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGB: Math.round(os.totalmem() / 2 ** 30) },
    settings: { cars: CARS, workers: WORKERS, rateHz: RATE_HZ, durationS: DURATION_S, connectRate: CONNECT_RATE, mosquitto: 'committed infra/mosquitto/mosquitto.conf + a plain listener' },
    plain,
    tls,
    ratios: {
      connectRate: ratio(plain.connections.perS, tls.connections.perS),
      ackedPerS: ratio(plain.readings.ackedPerS, tls.readings.ackedPerS),
      inTopicPerS: ratio(plain.readings.inTopicPerS, tls.readings.inTopicPerS),
      mosquittoRssPerConnection: ratio(plain.mosquitto.rssPerConnectionKB, tls.mosquitto.rssPerConnectionKB),
      mosquittoCpu: ratio(plain.mosquitto.cpuPct, tls.mosquitto.cpuPct),
      ingestCpu: ratio(plain.ingest.cpuPct, tls.ingest.cpuPct),
      loadgenCpu: ratio(plain.loadgen.cpuPct, tls.loadgen.cpuPct),
    },
    goal: {
      text: 'TLS keeps at least 80 % of plain throughput (readings/s acknowledged and in the topic) at 1,000 connected cars',
      met: (ratio(plain.readings.ackedPerS, tls.readings.ackedPerS) ?? 0) >= 0.8 && (ratio(plain.readings.inTopicPerS, tls.readings.inTopicPerS) ?? 0) >= 0.8,
      saturated: plain.readings.ackedPerS < plain.readings.offeredPerS * 0.95,
    },
  };
  console.log(`\n${table(plain, tls)}`);
  if (tls.certificates)
    console.log(
      `\ncertificates: ${tls.certificates.issued.toLocaleString('en-US')} car certificates issued in memory by ${WORKERS} workers in ${tls.certificates.wallMs} ms; ${tls.certificates.msPer1000} ms (${tls.certificates.cpuMsPer1000} CPU ms) per 1,000 in one process`,
    );
  console.log(
    `goal (TLS >= 80 % of plain throughput): ${result.goal.met ? 'met' : 'NOT met'}` +
      (result.goal.saturated ? '' : ` (plain kept up with the offered ${plain.readings.offeredPerS}/s: throughput is not saturated at this rate; compare CPU)`),
  );
  writeResult('loadgen-tls', result);
  return 0;
}

/** Ingest against the bare subscriber on the same listener and load: the ratio of what each took off the broker per second. */
function compareWithSubscriber(subscriber: PhaseResult[], ingest: PhaseResult[]): number {
  const rows = ingest.map((i) => {
    const s = subscriber.find((x) => x.phase === i.phase)!;
    const ratio = s.readings.consumedPerS && i.readings.consumedPerS !== null ? Math.round((i.readings.consumedPerS / s.readings.consumedPerS) * 1000) / 1000 : null;
    return { listener: i.phase, offeredPerS: i.readings.offeredPerS, subscriber: s, ingest: i, ratio };
  });
  const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toLocaleString('en-US'));
  console.log('\nlistener  offered/s  subscriber/s (CPU %)  ingest into Kafka/s (CPU %)  ingest/subscriber  acked not in Kafka  mosquitto drops');
  for (const r of rows) {
    console.log(
      `${r.listener.padEnd(8)}  ${fmt(r.offeredPerS).padStart(9)}  ${`${fmt(r.subscriber.readings.consumedPerS)} (${fmt(r.subscriber.ingest.cpuPct)})`.padStart(20)}  ` +
        `${`${fmt(r.ingest.readings.consumedPerS)} (${fmt(r.ingest.ingest.cpuPct)})`.padStart(27)}  ${fmt(r.ratio).padStart(17)}  ` +
        `${fmt(r.ingest.readings.inTopic === null ? null : r.ingest.readings.acked - r.ingest.readings.inTopic).padStart(18)}  ${fmt(r.ingest.mosquitto.dropped).padStart(15)}`,
    );
  }
  const goal = rows.every((r) => (r.ratio ?? 0) >= 0.7);
  console.log(`goal (ingest >= 0.7x a bare subscriber, side by side): ${goal ? 'met' : 'NOT met'}`);
  writeResult('loadgen-ingest-vs-subscriber', {
    type: 'loadgen-ingest-vs-subscriber-bench',
    id: ID,
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGB: Math.round(os.totalmem() / 2 ** 30) },
    settings: { mode: MODE, cars: CARS, connections: MODE === 'gateway' ? CONNECTIONS : CARS, workers: WORKERS, rateHz: RATE_HZ, durationS: DURATION_S },
    rows,
    goal: { text: 'ingest takes at least 0.7x what a bare MQTT subscriber takes from the same broker under the same load', met: goal },
  });
  return 0;
}

let finishing = false;
/** Cleans up (logging a failure) and exits: never rejects, so callers `void` it. */
const finish = async (code: number): Promise<never> => {
  if (!finishing) {
    finishing = true;
    await cleanup().catch((err: unknown) => console.error(`cleanup: ${(err as Error).message}`));
  }
  process.exit(code);
};
process.on('SIGINT', () => void finish(130));
process.on('SIGTERM', () => void finish(143));
setTimeout(() => {
  console.error(`loadgen TLS benchmark: stopped after BENCH_TIMEOUT_S=${TIMEOUT_S} s`);
  void finish(1);
}, TIMEOUT_S * 1000).unref();
main().then(
  (code) => finish(code),
  (err: unknown) => {
    console.error(`loadgen TLS benchmark failed: ${(err as Error)?.stack ?? String(err)}`);
    void finish(1);
  },
);
