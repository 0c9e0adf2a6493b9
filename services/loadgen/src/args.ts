/**
 * Command line of `npm run loadtest -- [run] [flags]` and `npm run loadtest -- report <file.jsonl>`.
 * Pure: argv and environment in, frozen options out. A bad value throws an ArgError whose message
 * names the flag and says what was expected. Defaults that the services also read (topic names,
 * consumer groups, window size, broker addresses) come from the same environment variables.
 */
import { repoRoot } from '@pitwall/common';
import path from 'node:path';
import { FAILURE_MODES, type FailureMode } from '@pitwall/simulator';
import type { ProcessSource } from './process-probe.js';

export class ArgError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = 'ArgError';
  }
}

export type Mode = 'car' | 'gateway';

export interface Topics {
  telemetry: string;
  features: string;
  scores: string;
  alerts: string;
  incidents: string;
}

export interface RunOptions {
  command: 'run';
  mode: Mode;
  cars: number;
  connections: number;
  workers: number;
  /** Readings per car per second of event time. */
  rateHz: number;
  /** Each send moves by up to ±jitter/2 of the period around its slot. */
  jitter: number;
  timeScale: number;
  /** New connections per second, over all workers. */
  connectRate: number;
  /** Most connections opened and not yet connected, all workers together. */
  connectPending: number;
  durationS: number;
  /** Longest wait after publishing stops for the pipeline to catch up and alerts to arrive. */
  drainS: number;
  failures: number;
  failureModes: FailureMode[];
  /** Onset, in event-time seconds after the run's start. */
  failureAtS: number;
  failureRampS: number;
  seed: number;
  prefix: string;
  out: string | undefined;
  mqttUrl: string;
  /**
   * The fleet CA's folder (ca.pem, ca.key). Over TLS (mqtts://, wss://) every connection presents
   * a certificate issued from it in memory (CN = the vehicle id, or pitwall-gateway) and checks the
   * broker's certificate against its ca.pem; plain URLs use no certificates.
   */
  pkiDir: string;
  brokers: string[];
  registryUrl: string;
  topics: Topics;
  groups: string[];
  windowMs: number;
  /** Windowing's grace: a window closes this long (event time) after its end. */
  graceMs: number;
  verify: boolean;
  /** Services' Prometheus endpoints whose process CPU and memory are sampled. */
  metrics: ProcessSource[];
  /** Folder of local brokers' pid files (scripts/infra.sh), sampled from /proc; null: none. */
  pidDir: string | null;
}

export interface ReportOptions {
  command: 'report';
  input: string;
  out: string | undefined;
}

export interface TableOptions {
  command: 'table';
  inputs: string[];
  /** Markdown file to write besides printing; undefined: print only. */
  out: string | undefined;
}

/** `--cars` with a list: one run per fleet size, in order, then the targets' table. */
export interface SweepOptions {
  command: 'sweep';
  /** Each run's options (validated) and the argv its own process gets. */
  runs: { options: RunOptions; argv: string[] }[];
  /** Seconds between runs for the pipeline to settle. */
  pauseS: number;
  /** Where the table goes (Markdown). */
  tableOut: string;
}

export interface HelpOptions {
  command: 'help';
}

export type Options = RunOptions | SweepOptions | TableOptions | ReportOptions | HelpOptions;

/** Connections one process may hold: each is a socket, and a process may open 20,000 files. */
export const MAX_CONNECTIONS_PER_WORKER = 15_000;
/** Workers are added per this many connections when --workers is not given. */
export const CONNECTIONS_PER_WORKER = 5_000;
/** Cars per gateway connection when --connections is not given. */
export const CARS_PER_GATEWAY = 50;
const MAX_CARS = 1_000_000;
const MAX_CARS_PER_CONNECTION = 99_999;
const REPO = repoRoot(import.meta.url);

/** The fleet CA's folder as scripts/infra.sh finds it: $PITWALL_PKI_DIR, else $PITWALL_HOME/pki, else <repo>/.pitwall/pki. */
export function defaultPkiDir(env: Env = {}): string {
  return env.PITWALL_PKI_DIR || path.join(env.PITWALL_HOME || path.join(REPO, '.pitwall'), 'pki');
}

/** Whether connections to this URL use TLS (and so client certificates). */
export const isTlsUrl = (url: string): boolean => /^(mqtts|wss|ssl|tls):/i.test(url);

export const USAGE = `Usage:
  npm run loadtest -- [run] [flags]          drive a simulated fleet against the running pipeline
  npm run loadtest -- report <file.jsonl> [--out page.html]   picture of a run (HTML + SVG)
  npm run loadtest -- --cars 1000,5000,10000,15000 [flags]   one run per fleet size, one after the
                         other (--pause S between them [30]), then the targets' table of all of them
  npm run loadtest -- table <file.jsonl>... [--out table.md]   the targets' table of earlier runs

Flags (defaults in brackets):
  --mode car|gateway     one MQTT connection per car, or gateways carrying many cars each [car]
  --cars N               fleet size [100]
  --connections N        gateway connections (--mode gateway only) [cars / ${CARS_PER_GATEWAY}]
  --workers N            worker processes [one per ${CONNECTIONS_PER_WORKER} connections]
  --rate HZ              readings per car per second of event time, 0.1-10 [1]
  --jitter F             send-time jitter as a fraction of the period, 0-0.9 [0.1]
  --time-scale X         event time runs X times faster than the wall clock, 1-100 [1]
  --connect-rate N       new connections per second, all workers together [500]
  --connect-pending N    at most N connections opened and not yet connected, all workers
                         together: a broker slow to handshake is not flooded into timeouts [250]
  --duration S           seconds of publishing [60]
  --drain S              at most this many seconds more for the pipeline to catch up [30]
  --failures N           cars that develop a failure [2]
  --failure-modes LIST   modes, cycled over the failing cars [coolant_overheat,tire_leak,battery_degradation]
  --failure-at S         onset, event-time seconds after the start [20]
  --failure-ramp S       event-time seconds from onset to full severity [30]
  --seed N               fleet seed [42]
  --prefix P             vehicle id prefix of this run [lt<time>]
  --out FILE             JSON lines, one per second [bench-results/loadtest-<time>.jsonl]
  --mqtt-url URL         [$MQTT_URL or mqtts://127.0.0.1:8883]; mqtt:// connects without certificates
  --pki DIR              fleet CA whose certificates the connections present over TLS (CN = vehicle id,
                         or pitwall-gateway in --mode gateway) [$PITWALL_PKI_DIR or $PITWALL_HOME/pki
                         or <repo>/.pitwall/pki]
  --brokers LIST         Kafka [$KAFKA_BROKERS or 127.0.0.1:9092]
  --registry-url URL     [$SCHEMA_REGISTRY_URL or http://127.0.0.1:8081/apis/ccompat/v7]
  --groups LIST          consumer groups whose lag is shown [$WINDOWING_GROUP_ID, $SCORING_GROUP_ID,
                         $INCIDENTS_GROUP_ID, $DISPATCH_GROUP_ID or pitwall-windowing, -scoring, -incidents, -dispatch]
  --window-ms N          window size, to date an alert's window end [$WINDOW_SIZE_MS or 10000]
  --grace-ms N           windowing's grace: latency counts from window end + grace [$WINDOW_GRACE_MS or 2000]
  --metrics LIST         name=url of Prometheus endpoints whose process CPU and memory are sampled, or
                         none [the demo's: ingest, windowing, scoring, dispatch, incidents on
                         http://127.0.0.1:9101-9106/metrics]
  --pid-dir DIR          pid files of local brokers (kafka.pid, ...) read from /proc, or none
                         [$PITWALL_HOME/run or <repo>/.pitwall/run]
  --no-verify            skip counting the run's readings in the telemetry topic at the end
Topic names: TOPIC_TELEMETRY, TOPIC_FEATURES, TOPIC_SCORES, TOPIC_ALERTS, TOPIC_INCIDENTS, as the services.`;

type Env = Readonly<Record<string, string | undefined>>;

const FLAGS = new Set([
  'mode',
  'cars',
  'connections',
  'workers',
  'rate',
  'jitter',
  'time-scale',
  'connect-rate',
  'connect-pending',
  'duration',
  'drain',
  'failures',
  'failure-modes',
  'failure-at',
  'failure-ramp',
  'seed',
  'prefix',
  'out',
  'mqtt-url',
  'pki',
  'brokers',
  'registry-url',
  'groups',
  'window-ms',
  'grace-ms',
  'metrics',
  'pid-dir',
  'no-verify',
  'pause',
  'help',
]);
const BOOLEAN_FLAGS = new Set(['no-verify', 'help']);

/** `--name value` and `--name=value` pairs; positional words kept in order. */
function split(argv: readonly string[]): { flags: Map<string, string>; words: string[] } {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!FLAGS.has(name)) throw new ArgError(`--${name}`, `unknown flag (see --help)`);
    if (flags.has(name)) throw new ArgError(`--${name}`, 'given twice');
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq >= 0) throw new ArgError(`--${name}`, 'takes no value');
      flags.set(name, 'true');
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new ArgError(`--${name}`, 'needs a value');
    flags.set(name, value);
  }
  return { flags, words };
}

export function parseArgs(argv: readonly string[], env: Env = {}, now: Date = new Date()): Readonly<Options> {
  const { flags, words } = split(argv);
  if (flags.has('help') || words[0] === 'help') return { command: 'help' };
  const command = words[0] ?? 'run';
  if (command === 'report') return parseReport(flags, words.slice(1));
  if (command === 'table') return parseTable(flags, words.slice(1));
  if (command !== 'run') throw new ArgError(command, 'unknown command, expected run, report or table');
  if (words.length > 1) throw new ArgError(words[1]!, 'unexpected argument');
  if (flags.get('cars')?.includes(',')) return Object.freeze(parseSweep(flags, env, now));
  if (flags.has('pause')) throw new ArgError('--pause', 'only with a list of --cars (a sweep)');
  return Object.freeze(parseRun(flags, env, now));
}

function parseTable(flags: Map<string, string>, words: string[]): TableOptions {
  for (const name of flags.keys()) if (name !== 'out') throw new ArgError(`--${name}`, 'not a flag of table (only --out)');
  if (words.length === 0) throw new ArgError('table', 'expects one or more JSONL files of load test runs');
  return { command: 'table', inputs: words, out: flags.get('out') };
}

/**
 * A sweep: every size is validated here as its own run (a bad combination fails before the first
 * run starts); each run then gets its own process, prefix and output file.
 */
function parseSweep(flags: Map<string, string>, env: Env, now: Date): SweepOptions {
  for (const name of ['prefix', 'out']) {
    if (flags.has(name)) throw new ArgError(`--${name}`, 'not with a list of --cars: every run of a sweep gets its own');
  }
  const sizes = flags
    .get('cars')!
    .split(',')
    .map((x) => x.trim());
  if (sizes.some((x) => x === '')) throw new ArgError('--cars', `expected a number or a comma-separated list of numbers, got "${flags.get('cars')}"`);
  const raw = flags.get('pause');
  const pauseS = raw === undefined ? 30 : Number(raw);
  if (raw !== undefined && (raw.trim() === '' || !Number.isFinite(pauseS) || pauseS < 0 || pauseS > 3600)) {
    throw new ArgError('--pause', `must be between 0 and 3600 seconds, got "${raw}"`);
  }
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const runs = sizes.map((size) => {
    const out = path.join(REPO, 'bench-results', `loadtest-${stamp}-${size}cars.jsonl`);
    const own = new Map(flags);
    own.delete('pause');
    own.set('cars', size);
    own.set('out', out);
    const options = parseRun(own, env, now);
    const argv = [...own].map(([name, value]) => (BOOLEAN_FLAGS.has(name) ? `--${name}` : `--${name}=${value}`));
    return { options, argv };
  });
  return { command: 'sweep', runs, pauseS, tableOut: path.join(REPO, 'bench-results', `loadtest-${stamp}-targets.md`) };
}

function parseReport(flags: Map<string, string>, words: string[]): ReportOptions {
  for (const name of flags.keys()) if (name !== 'out') throw new ArgError(`--${name}`, 'not a flag of report (only --out)');
  if (words.length !== 1) throw new ArgError('report', 'expects exactly one JSONL file');
  return { command: 'report', input: words[0]!, out: flags.get('out') };
}

function pkiDir(flag: string | undefined, env: Env): string {
  if (flag === undefined) return defaultPkiDir(env);
  if (flag.trim() === '') throw new ArgError('--pki', 'expected a folder');
  return flag;
}

function parseRun(flags: Map<string, string>, env: Env, now: Date): RunOptions {
  const text = (name: string, fallback: string): string => flags.get(name) ?? fallback;
  const number = (name: string, fallback: number, min: number, max: number, integer = false): number => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const n = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new ArgError(`--${name}`, `expected ${integer ? 'an integer' : 'a number'}, got "${raw}"`);
    if (n < min || n > max) throw new ArgError(`--${name}`, `must be between ${min} and ${max}, got ${raw}`);
    return n;
  };
  const list = (name: string, fallback: readonly string[]): string[] => {
    const raw = flags.get(name);
    if (raw === undefined) return [...fallback];
    const items = raw
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    if (items.length === 0) throw new ArgError(`--${name}`, 'expected a comma-separated list');
    return items;
  };
  const url = (name: string, fallback: string, protocols: readonly string[]): string => {
    const raw = text(name, fallback);
    let protocol: string;
    try {
      protocol = new URL(raw).protocol.replace(/:$/, '');
    } catch {
      throw new ArgError(`--${name}`, `expected a URL, got "${raw}"`);
    }
    if (!protocols.includes(protocol)) throw new ArgError(`--${name}`, `expected a ${protocols.join(' or ')} URL, got "${raw}"`);
    return raw;
  };

  const modeText = text('mode', 'car');
  if (modeText !== 'car' && modeText !== 'gateway') throw new ArgError('--mode', `expected car or gateway, got "${modeText}"`);
  const mode: Mode = modeText;
  const cars = number('cars', 100, 1, MAX_CARS, true);
  if (mode === 'car' && flags.has('connections')) throw new ArgError('--connections', 'only for --mode gateway (a car opens one connection)');
  if (mode === 'car' && cars > MAX_CARS_PER_CONNECTION) throw new ArgError('--cars', `at most ${MAX_CARS_PER_CONNECTION} in --mode car; use --mode gateway`);
  const connections = mode === 'car' ? cars : number('connections', Math.ceil(cars / CARS_PER_GATEWAY), 1, cars, true);
  if (Math.ceil(cars / connections) > MAX_CARS_PER_CONNECTION) throw new ArgError('--connections', `too few: at most ${MAX_CARS_PER_CONNECTION} cars per connection`);
  const workers = number('workers', Math.ceil(connections / CONNECTIONS_PER_WORKER), 1, connections, true);
  if (Math.ceil(connections / workers) > MAX_CONNECTIONS_PER_WORKER) {
    throw new ArgError(
      '--workers',
      `too few: ${connections} connections need at least ${Math.ceil(connections / MAX_CONNECTIONS_PER_WORKER)} workers (at most ${MAX_CONNECTIONS_PER_WORKER} per process)`,
    );
  }
  const failures = number('failures', Math.min(2, cars), 0, cars, true);
  const failureModes = list('failure-modes', ['coolant_overheat', 'tire_leak', 'battery_degradation']);
  for (const m of failureModes) {
    if (!(FAILURE_MODES as readonly string[]).includes(m)) throw new ArgError('--failure-modes', `unknown mode "${m}", expected some of ${FAILURE_MODES.join(', ')}`);
  }
  const prefix = text('prefix', `lt${now.getTime().toString(36)}`);
  // Vehicle ids are `<prefix>-<connection>-<car>` and must stay within 64 characters of [A-Za-z0-9_.-].
  if (!/^[A-Za-z0-9_.]{1,40}$/.test(prefix)) throw new ArgError('--prefix', `expected 1-40 characters of A-Z a-z 0-9 _ . (no "-"), got "${prefix}"`);
  // The CA issues no car a name starting with "pitwall-": those are the services' identities.
  if (prefix.toLowerCase() === 'pitwall') throw new ArgError('--prefix', `"${prefix}" would make vehicle ids starting with "pitwall-", which name services`);
  const durationS = number('duration', 60, 1, 86_400);
  const timeScale = number('time-scale', 1, 1, 100);
  const failureAtS = number('failure-at', 20, 0, 1e7);
  if (failures > 0 && failureAtS >= durationS * timeScale) {
    throw new ArgError('--failure-at', `${failureAtS} s is after the run's ${durationS * timeScale} s of event time (--duration x --time-scale)`);
  }
  const envNumber = (variable: string, fallback: number): number => {
    const v = env[variable];
    return v === undefined || v.trim() === '' || !Number.isFinite(Number(v)) ? fallback : Number(v);
  };
  return {
    command: 'run',
    mode,
    cars,
    connections,
    workers,
    rateHz: number('rate', 1, 0.1, 10),
    jitter: number('jitter', 0.1, 0, 0.9),
    timeScale,
    connectRate: number('connect-rate', 500, 1, 100_000),
    connectPending: number('connect-pending', 250, 1, 100_000, true),
    durationS,
    drainS: number('drain', 30, 0, 3600),
    failures,
    failureModes: failureModes as FailureMode[],
    failureAtS,
    failureRampS: number('failure-ramp', 30, 0, 1e7),
    seed: number('seed', 42, 0, 2 ** 32 - 1, true),
    prefix,
    out: flags.get('out'),
    mqttUrl: url('mqtt-url', env.MQTT_URL || 'mqtts://127.0.0.1:8883', ['mqtt', 'mqtts', 'tcp', 'ws', 'wss']),
    pkiDir: pkiDir(flags.get('pki'), env),
    brokers: list(
      'brokers',
      (env.KAFKA_BROKERS ?? '127.0.0.1:9092')
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    ),
    registryUrl: url('registry-url', env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7', ['http', 'https']),
    topics: {
      telemetry: env.TOPIC_TELEMETRY ?? 'vehicle.telemetry',
      features: env.TOPIC_FEATURES ?? 'vehicle.features',
      scores: env.TOPIC_SCORES ?? 'vehicle.scores',
      alerts: env.TOPIC_ALERTS ?? 'maintenance.alerts',
      incidents: env.TOPIC_INCIDENTS ?? 'maintenance.incidents',
    },
    groups: list('groups', [
      env.WINDOWING_GROUP_ID ?? 'pitwall-windowing',
      env.SCORING_GROUP_ID ?? 'pitwall-scoring',
      env.INCIDENTS_GROUP_ID ?? 'pitwall-incidents',
      env.DISPATCH_GROUP_ID ?? 'pitwall-dispatch',
    ]),
    windowMs: number('window-ms', envNumber('WINDOW_SIZE_MS', 10_000), 100, 86_400_000, true),
    graceMs: number('grace-ms', envNumber('WINDOW_GRACE_MS', 2_000), 0, 86_400_000, true),
    verify: !flags.has('no-verify'),
    metrics: metricsSources(flags.get('metrics')),
    pidDir: pidDirOf(flags.get('pid-dir'), env),
  };
}

/** Health ports of `scripts/pitwall up` and `demo` (the services' HEALTH_PORT defaults). */
export const DEMO_METRICS: readonly (readonly [string, number])[] = [
  ['ingest', 9101],
  ['windowing', 9102],
  ['scoring', 9103],
  ['dispatch', 9104],
  ['incidents', 9106],
];

function metricsSources(metrics: string | undefined): ProcessSource[] {
  const out: ProcessSource[] = [];
  if (metrics === undefined) {
    for (const [name, port] of DEMO_METRICS) out.push({ name, kind: 'metrics', url: `http://127.0.0.1:${port}/metrics` });
  } else if (metrics.trim() !== 'none') {
    for (const item of metrics.split(',').map((x) => x.trim())) {
      const eq = item.indexOf('=');
      const name = item.slice(0, eq);
      if (eq < 1 || !/^[a-z][a-z0-9_-]*$/i.test(name)) throw new ArgError('--metrics', `expected name=url items or none, got "${item}"`);
      const url = item.slice(eq + 1);
      let protocol = '';
      try {
        protocol = new URL(url).protocol;
      } catch {
        // reported below
      }
      if (protocol !== 'http:' && protocol !== 'https:') throw new ArgError('--metrics', `expected an http(s) URL for ${name}, got "${url}"`);
      if (out.some((s) => s.name === name)) throw new ArgError('--metrics', `${name} given twice`);
      out.push({ name, kind: 'metrics', url });
    }
  }
  return out;
}

function pidDirOf(flag: string | undefined, env: Env): string | null {
  if (flag === undefined) return path.join(env.PITWALL_HOME || path.join(REPO, '.pitwall'), 'run');
  if (flag.trim() === '') throw new ArgError('--pid-dir', 'expected a folder or none');
  return flag === 'none' ? null : flag;
}
