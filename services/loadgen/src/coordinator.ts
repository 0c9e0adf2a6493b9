/**
 * Runs a load test: plans the run, forks the workers, and once a second adds up their counters,
 * samples Kafka (stage offsets, consumer lag), prints a line and appends a JSON line. When
 * publishing is over it waits (at most --drain seconds) until every failing car has been alerted
 * and the telemetry topic has stopped growing, closes the workers, counts the run's readings in
 * the telemetry topic and writes the summary (last JSON line, and a table on stdout).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configReader, kafkaSecurityOptions, readKafkaSecurity } from '@pitwall/common';
import { Kafka, logLevel } from 'kafkajs';
import type { RunOptions } from './args.js';
import { createProbe, startSampler } from './kafka-probe.js';
import { connectionSpecs, workerSlices } from './partition.js';
import { summarize } from './percentiles.js';
import { makeClock, planFailures } from './plan.js';
import { startPool } from './pool.js';
import { formatLine, secondRecord, type Phase, type SecondRecord, type Totals } from './second.js';
import { alertLatencies, buildSummary, summaryTable, type Summary } from './summary.js';
import { countRunReadings, type TelemetryCount } from './verify.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
/** Time the workers get to start before publishing begins. */
const STARTUP_MS = 2000;
/** The telemetry topic must not grow for this many samples before the drain ends early. */
const STABLE_SAMPLES = 3;

export function defaultOutFile(now = new Date()): string {
  return path.join(REPO, 'bench-results', `loadtest-${now.toISOString().replace(/[:.]/g, '-')}.jsonl`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export interface RunResult {
  out: string;
  summary: Summary;
  interrupted: boolean;
}

export async function runLoadTest(o: RunOptions, env: Readonly<Record<string, string | undefined>> = process.env, print: (line: string) => void = console.log): Promise<RunResult> {
  const out = path.resolve(o.out ?? defaultOutFile());
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, '');
  const write = (record: object): void => appendFileSync(out, JSON.stringify(record) + '\n');

  const clock = makeClock(Date.now() + STARTUP_MS, o.durationS * 1000, o.timeScale);
  const endWall = clock.wallStart + o.durationS * 1000;
  const failures = planFailures(o, clock);
  const specs = connectionSpecs(o.prefix, o.cars, o.connections);
  const slices = workerSlices(o.connections, o.workers);

  // KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*: as the services (README: Configuration); it reads every pipeline topic, so an admin identity.
  const c = configReader(env);
  const security = c.done(readKafkaSecurity(c));
  const kafka = new Kafka({ clientId: `pitwall-loadgen-${o.prefix}`, brokers: o.brokers, ...kafkaSecurityOptions(security), logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const probe = await createProbe(kafka, o.topics, o.groups);
  const telemetryFrom = new Map((await probe.partitions(o.topics.telemetry).catch(() => [])).map((p) => [p.partition, p.high]));
  write({ type: 'start', options: o, clock, failures, connections: specs.length, workers: slices.length });
  print(`loadtest ${o.prefix}: ${o.cars} cars on ${o.connections} connections (${o.mode} mode), ${slices.length} workers, ${o.rateHz} Hz x${o.timeScale}, ${o.durationS} s -> ${out}`);
  for (const f of failures) print(`  failure ${f.vehicleId} ${f.mode} at +${o.failureAtS} s event time (wall ${new Date(f.onsetWall).toISOString()})`);

  const pool = startPool(slices, specs, failures, {
    clock,
    durationMs: o.durationS * 1000,
    rateHz: o.rateHz,
    jitter: o.jitter,
    connectRate: o.connectRate,
    seed: o.seed,
    mqttUrl: o.mqttUrl,
    ...(env.MQTT_USERNAME ? { mqttUsername: env.MQTT_USERNAME } : {}),
    ...(env.MQTT_PASSWORD ? { mqttPassword: env.MQTT_PASSWORD } : {}),
  });
  const sampler = await startSampler(probe);
  const cpuUs = (): number => {
    const own = process.cpuUsage();
    return own.user + own.system + pool.usage().cpuUs;
  };
  const totals = (): Totals => {
    const sample = sampler.latest();
    return {
      at: Date.now(),
      counters: pool.counters(),
      offsets: sample.offsets,
      lag: sample.lag,
      probeAt: sample.at,
      alertedCars: new Set(pool.alerts.map((a) => a.vehicleId)).size,
      latency: summarize(alertLatencies(pool.alerts, clock, o.windowMs).map(Math.round)),
      cpuUs: cpuUs(),
      rss: process.memoryUsage().rss + pool.usage().rss,
    };
  };

  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) process.exit(130); // a second Ctrl-C: give up at once
    interrupted = true;
    print('interrupted: closing the workers (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  const seconds: SecondRecord[] = [];
  await sleep(clock.wallStart - Date.now());
  let prev = totals();
  const baseline = prev.offsets;
  let stable = 0;
  const drainUntil = endWall + o.drainS * 1000;
  for (let t = 1; ; t++) {
    await sleep(clock.wallStart + t * 1000 - Date.now());
    // Workers report 150 ms before each second; one starved of CPU for a moment is waited for.
    await pool.reportedFor(t, 600);
    const now = totals();
    const phase: Phase = now.at >= endWall ? 'drain' : now.counters.up < specs.length ? 'ramp' : 'run';
    const record = secondRecord(t, phase, now, prev);
    seconds.push(record);
    write(record);
    print(formatLine(record));
    if (phase === 'drain' && now.probeAt !== prev.probeAt) stable = now.offsets.telemetry === prev.offsets.telemetry ? stable + 1 : 0;
    prev = now;
    if (pool.fatal.length > 0 || interrupted) break;
    const allAlerted = failures.every((f) => pool.alerts.some((a) => a.vehicleId === f.vehicleId));
    if (phase === 'drain' && pool.allPublished() && ((allAlerted && stable >= STABLE_SAMPLES) || now.at >= drainUntil)) break;
  }
  process.off('SIGINT', onSigint);

  const finals = await pool.close(30_000);
  await sampler.stop();
  const ackedByCar: Record<string, number> = Object.assign({}, ...finals.map((f) => f.ackedByCar));
  let telemetry: TelemetryCount | { skipped: string };
  if (!o.verify) telemetry = { skipped: '--no-verify' };
  else if (interrupted) telemetry = { skipped: 'interrupted' };
  else if (pool.fatal.length > 0 || finals.length < pool.size) telemetry = { skipped: 'a worker failed' };
  else {
    const to = new Map((await probe.partitions(o.topics.telemetry)).map((p) => [p.partition, p.high]));
    print(`counting the run's readings in ${o.topics.telemetry} ...`);
    telemetry = await countRunReadings(kafka, { topic: o.topics.telemetry, registryUrl: o.registryUrl, prefix: o.prefix, from: telemetryFrom, to, timeoutMs: 300_000 }).catch(
      (err: unknown) => ({ skipped: `count failed: ${(err as Error).message}` }),
    );
  }
  await probe.close();
  const summary = buildSummary({
    options: o,
    clock,
    failures,
    seconds,
    baseline,
    alerts: pool.alerts,
    counters: pool.counters(),
    ackedByCar,
    telemetry,
    cpuUs: cpuUs(),
    processes: pool.size + 1,
  });
  if (pool.fatal.length > 0) summary.ok = false;
  write(summary);
  print('');
  print(summaryTable(summary));
  for (const f of pool.fatal) print(`error: ${f}`);
  const shown = path.relative(process.cwd(), out);
  print(`\n${seconds.length} seconds written to ${out}; picture: npm run loadtest -- report ${shown.startsWith('..') ? out : shown}`);
  return { out, summary, interrupted };
}
