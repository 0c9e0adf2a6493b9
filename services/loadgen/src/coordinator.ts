/**
 * Runs a load test: forks the workers and waits until they are ready (over TLS each has issued its
 * connections' certificates), plans the run and starts them, and once a second adds up their counters,
 * samples Kafka (stage offsets, consumer lag), prints a line and appends a JSON line. When
 * publishing is over it waits (at most --drain seconds) until every failing car has been alerted
 * and the telemetry topic has stopped growing, closes the workers, counts the run's readings in
 * the telemetry topic and writes the summary (last JSON line, and a table on stdout). Retained
 * maintenance state the cars may not clear themselves (TLS identities) is cleared as dispatch.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configReader, kafkaSecurityOptions, readKafkaSecurity, repoRoot } from '@pitwall/common';
import { Kafka, logLevel } from 'kafkajs';
import { isTlsUrl, type RunOptions } from './args.js';
import { clearRetainedAsDispatch } from './identities.js';
import { createProbe, startSampler } from './kafka-probe.js';
import { connectionSpecs, workerSlices } from './partition.js';
import { summarize } from './percentiles.js';
import { makeClock, planFailures } from './plan.js';
import { startPool } from './pool.js';
import { pidSources, startProcessSampler } from './process-probe.js';
import type { IdentityStats } from './messages.js';
import { formatLine, secondRecord, type Phase, type SecondRecord, type Totals } from './second.js';
import { alertLatencies, buildSummary, summaryTable, type Summary } from './summary.js';
import { countRunReadings, type TelemetryCount } from './verify.js';

const REPO = repoRoot(import.meta.url);
/** Time the workers get to start before publishing begins. */
const STARTUP_MS = 2000;
/**
 * The telemetry topic must not grow for this many samples before the drain ends early; while it
 * holds fewer records than were acknowledged (ingest behind, or stalled on a reconnect), for
 * STALLED_SAMPLES.
 */
const STABLE_SAMPLES = 3;
const STALLED_SAMPLES = 30;

export function defaultOutFile(now = new Date()): string {
  return path.join(REPO, 'bench-results', `loadtest-${now.toISOString().replace(/[:.]/g, '-')}.jsonl`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
/**
 * Before counting, the telemetry topic must have stopped growing: the drain (--drain) can end while
 * ingest still writes what the broker queued for it, and counting then would report readings as
 * missing that are merely late. Quiet for VERIFY_QUIET_MS once it holds at least as many new records
 * as were acknowledged, else for VERIFY_STALLED_MS (ingest may pause for seconds on a reconnect or a
 * Kafka hiccup with a backlog still queued); at most VERIFY_SETTLE_MAX_MS of waiting.
 */
const VERIFY_QUIET_MS = 3_000;
const VERIFY_STALLED_MS = 30_000;
const VERIFY_SETTLE_MAX_MS = 300_000;

/**
 * Resolves once `read` has returned the same value for `quietMs` (`stalledMs` while the value is
 * below `enough`), or false after `maxMs`.
 */
export async function untilStill(read: () => Promise<bigint>, o: { enough: bigint; quietMs: number; stalledMs: number; maxMs: number; pollMs?: number }): Promise<boolean> {
  const deadline = Date.now() + o.maxMs;
  let last = await read();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(o.pollMs ?? 500);
    const now = await read();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= (now >= o.enough ? o.quietMs : o.stalledMs)) return true;
  }
  return false;
}

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

  const tls = isTlsUrl(o.mqttUrl);
  const specs = connectionSpecs(o.prefix, o.cars, o.connections);
  const slices = workerSlices(o.connections, o.workers);

  // KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*: as the services (docs/configuration.md); it reads every pipeline topic, so an admin identity.
  const c = configReader(env);
  const security = c.done(readKafkaSecurity(c));
  const kafka = new Kafka({ clientId: `pitwall-loadgen-${o.prefix}`, brokers: o.brokers, ...kafkaSecurityOptions(security), logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const probe = await createProbe(kafka, o.topics, o.groups);
  const telemetryFrom = new Map((await probe.partitions(o.topics.telemetry).catch(() => [])).map((p) => [p.partition, p.high]));
  // Records in the topic before the run: the drain and the count wait for this plus what was acknowledged.
  const telemetryStart = [...telemetryFrom.values()].reduce((sum, high) => sum + Number(high), 0);
  print(`loadtest ${o.prefix}: ${o.cars} cars on ${o.connections} connections (${o.mode} mode), ${slices.length} workers, ${o.rateHz} Hz x${o.timeScale}, ${o.durationS} s -> ${out}`);

  const pool = startPool(slices, specs, {
    mode: o.mode,
    durationMs: o.durationS * 1000,
    rateHz: o.rateHz,
    jitter: o.jitter,
    connectRate: o.connectRate,
    connectPending: o.connectPending,
    seed: o.seed,
    mqttUrl: o.mqttUrl,
    ...(tls ? { pkiDir: o.pkiDir } : {}),
    ...(env.MQTT_USERNAME ? { mqttUsername: env.MQTT_USERNAME } : {}),
    ...(env.MQTT_PASSWORD ? { mqttPassword: env.MQTT_PASSWORD } : {}),
  });
  if (tls) print(`  issuing ${o.connections.toLocaleString('en-US')} ${o.mode} certificates from ${o.pkiDir} (in memory) ...`);
  const ready = await pool.ready((done, total) => print(`  ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} certificates issued`));
  if (ready === null) {
    await pool.close(5_000);
    await probe.close();
    throw new Error(`a worker failed before the run started: ${pool.fatal.join('; ')}`);
  }
  const identities = identitySummary(ready);
  if (identities) {
    print(
      `  issued ${identities.issued.toLocaleString('en-US')} certificates in ${(identities.wallMs / 1000).toFixed(1)} s over ${slices.length} workers: ` +
        `${identities.msPer1000.toLocaleString('en-US')} ms and ${identities.cpuMsPer1000.toLocaleString('en-US')} CPU ms per 1,000 in one process ` +
        `(+ ${identities.contextMsPer1000.toLocaleString('en-US')} ms per 1,000 for their TLS contexts)`,
    );
  }

  const clock = makeClock(Date.now() + STARTUP_MS, o.durationS * 1000, o.timeScale);
  const endWall = clock.wallStart + o.durationS * 1000;
  const failures = planFailures(o, clock);
  write({ type: 'start', options: o, clock, failures, connections: specs.length, workers: slices.length, identities });
  for (const f of failures) print(`  failure ${f.vehicleId} ${f.mode} at +${o.failureAtS} s event time (wall ${new Date(f.onsetWall).toISOString()})`);
  pool.start(clock, failures);
  const sampler = await startSampler(probe);
  const processSampler = startProcessSampler([...o.metrics, ...(o.pidDir === null ? [] : pidSources(o.pidDir))]);
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
      latency: summarize(alertLatencies(pool.alerts, clock, o.windowMs, o.graceMs).map(Math.round)),
      cpuUs: cpuUs(),
      rss: process.memoryUsage().rss + pool.usage().rss,
      processes: processSampler.latest(),
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
    const caughtUp = now.offsets.telemetry !== null && now.offsets.telemetry - telemetryStart >= now.counters.acked;
    if (phase === 'drain' && pool.allPublished() && ((allAlerted && stable >= (caughtUp ? STABLE_SAMPLES : STALLED_SAMPLES)) || now.at >= drainUntil)) break;
  }
  process.off('SIGINT', onSigint);

  const finals = await pool.close(30_000);
  await sampler.stop();
  await processSampler.stop();
  const retained = finals.flatMap((f) => f.retained);
  if (retained.length > 0) {
    await clearRetainedAsDispatch(o.mqttUrl, o.pkiDir, retained).then(
      (n) => print(`cleared the retained maintenance state of ${n} of ${retained.length} cars (as pitwall-dispatch)`),
      (err: unknown) => print(`warning: could not clear the retained maintenance state of ${retained.length} cars: ${(err as Error).message}`),
    );
  }
  const ackedByCar: Record<string, number> = Object.fromEntries(finals.flatMap((f) => Object.entries(f.ackedByCar)));
  let telemetry: TelemetryCount | { skipped: string };
  if (!o.verify) telemetry = { skipped: '--no-verify' };
  else if (interrupted) telemetry = { skipped: 'interrupted' };
  else if (pool.fatal.length > 0 || finals.length < pool.size) telemetry = { skipped: 'a worker failed' };
  else {
    const endOf = async (): Promise<bigint> => (await probe.partitions(o.topics.telemetry)).reduce((sum, p) => sum + BigInt(p.high), 0n);
    const waitFrom = Date.now();
    const enough = BigInt(telemetryStart + pool.counters().acked);
    const still = await untilStill(endOf, { enough, quietMs: VERIFY_QUIET_MS, stalledMs: VERIFY_STALLED_MS, maxMs: VERIFY_SETTLE_MAX_MS });
    const waited = Math.round((Date.now() - waitFrom) / 1000);
    if (waited > VERIFY_QUIET_MS / 1000 + 1) print(`${o.topics.telemetry} grew for ${waited} s after the drain (ingest still writing)${still ? '' : '; counting while it still grows'}`);
    const to = new Map((await probe.partitions(o.topics.telemetry)).map((p) => [p.partition, p.high]));
    print(`counting the run's readings in ${o.topics.telemetry} ...`);
    telemetry = await countRunReadings(kafka, { topic: o.topics.telemetry, registryUrl: o.registryUrl, prefix: o.prefix, from: telemetryFrom, to, timeoutMs: 300_000 }).catch((err: unknown) => ({
      skipped: `count failed: ${(err as Error).message}`,
    }));
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
    ramps: finals.length === pool.size ? finals.map((f) => f.ramp) : undefined,
    identities,
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

/** Certificates issued over all workers: total, slowest worker's wall time, and the cost per 1,000 in one process. */
function identitySummary(stats: readonly (IdentityStats | null)[]): Summary['identities'] {
  const all = stats.filter((x): x is IdentityStats => x !== null && x.issued > 0);
  if (all.length === 0) return null;
  const issued = all.reduce((n, x) => n + x.issued, 0);
  return {
    kind: all[0]!.kind,
    issued,
    setupMs: Math.max(...all.map((x) => x.setupMs)),
    wallMs: Math.max(...all.map((x) => x.wallMs)),
    msPer1000: Math.round((all.reduce((n, x) => n + x.wallMs, 0) / issued) * 1000),
    cpuMsPer1000: Math.round((all.reduce((n, x) => n + x.cpuMs, 0) / issued) * 1000),
    contextMsPer1000: Math.round((all.reduce((n, x) => n + x.contextMs, 0) / issued) * 1000),
  };
}
