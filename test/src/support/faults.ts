/**
 * Pieces of the fault-injection suite (faults.e2e.test.ts): services under a small supervisor,
 * readers of the pipeline's topics, the batch window computation the windowing output is checked
 * against, followers of the output topics for recovery times, and MQTT publishing that records what
 * the broker acknowledged.
 */
import { randomUUID } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import {
  computeFeatures,
  connectMqtt,
  createTopicCodec,
  FEATURE_NAMES,
  NO_MATCHING_SUBSCRIBERS,
  SENSOR_NAMES,
  silentLogger,
  startTopicReader,
  windowDef,
  windowStartsFor,
  withPubackReasons,
  type AlertRecord,
  type IncidentRecord,
  type ScoreRecord,
  type TelemetryRecord,
} from '@pitwall/common';
import type { PublishClient } from '@pitwall/simulator';
import { adminSchemaStore, kafkaClientConfig, type ServiceProcess, startService, waitFor } from './stack.js';
import { asGateway } from './identities.js';

/** The windowing service's default window (10 s tumbling, 2 s grace). */
export const WINDOW = windowDef(10_000, 10_000, 2_000);
export const STAGES = ['ingest', 'windowing', 'scoring', 'incidents', 'dispatch'] as const;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const secs = (ms: number | undefined): string => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

/** Rejects after `ms` with a message naming `what`. */
export function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p.finally(() => clearTimeout(timer)), new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)))]);
}

export function kafkaFor(brokers: string): Kafka {
  return new Kafka({ clientId: 'faults', ...kafkaClientConfig(brokers), logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 200 } });
}

/** A client speaking for many cars (the gateway identity of the broker's CA). */
export async function mqttClient(url: string, clientId: string, extra: IClientOptions = {}): Promise<MqttClient> {
  return connectMqtt(url, { protocolVersion: 5, clientId, reconnectPeriod: 500, connectTimeout: 5_000, ...(await asGateway(url)), ...extra }, silentLogger);
}

// ------------------------------------------------------------------ services

/**
 * The five services as processes. kill() is kill -9; an exit nobody asked for is recorded and, with
 * `restartOnExit`, followed by a restart one second later (what Kubernetes would do).
 */
export class Services {
  readonly procs = new Map<string, ServiceProcess>();
  readonly unexpectedExits: string[] = [];
  private readonly expected = new Set<ServiceProcess>();
  private n = 0;
  private stopping = false;

  constructor(
    private readonly env: Record<string, string>,
    private readonly tag: string,
    private readonly restartOnExit = false,
  ) {}

  async start(name: string): Promise<ServiceProcess> {
    const p = await startService(name, this.env, `${this.tag}-${name}-${this.n++}`);
    this.procs.set(name, p);
    void p.exited.then((code) => {
      if (this.expected.has(p) || this.stopping) return;
      this.unexpectedExits.push(`${name} exited with code ${code} (log ${p.logFile})`);
      if (this.restartOnExit && this.procs.get(name) === p) {
        void sleep(1_000).then(async () => {
          // A restart that fails is one more unexpected exit for the test to report, not a crash of the runner.
          if (!this.stopping) await this.start(name).catch((err: unknown) => this.unexpectedExits.push(`${name} did not restart: ${String(err)}`));
        });
      }
    });
    return p;
  }

  get(name: string): ServiceProcess {
    return this.procs.get(name)!;
  }

  async kill(name: string): Promise<void> {
    const p = this.get(name);
    this.expected.add(p);
    await p.kill();
  }

  /** SIGTERM; resolves with the exit code. */
  async stop(name: string): Promise<number | null> {
    const p = this.get(name);
    this.expected.add(p);
    return p.stop();
  }

  /** ms until /readyz answers 200, or undefined if it did not within timeoutMs. */
  async waitReady(name: string, timeoutMs: number): Promise<number | undefined> {
    const t0 = Date.now();
    try {
      await waitFor(`${name} ready`, () => this.get(name).ready(), timeoutMs, 100);
      return Date.now() - t0;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM to all; exit code and seconds per service. */
  async stopAll(): Promise<Record<string, string>> {
    this.stopping = true;
    const out: Record<string, string> = {};
    await Promise.all(
      [...this.procs].map(async ([name, p]) => {
        this.expected.add(p);
        const t0 = Date.now();
        const code = await Promise.race([p.stop(), sleep(30_000).then(() => 'hung')]);
        if (code === 'hung') await p.kill();
        out[name] = `${code} in ${secs(Date.now() - t0)}`;
      }),
    );
    return out;
  }
}

/** Polls /readyz of the given services every `everyMs`; `log` holds [epoch ms, status] per service. */
export function pollReadiness(services: () => ServiceProcess[], everyMs = 500) {
  const log = new Map<string, [number, number | 'down'][]>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await Promise.all(
        services().map(async (s) => {
          let status: number | 'down';
          try {
            status = (await fetch(`http://127.0.0.1:${s.healthPort}/readyz`, { signal: AbortSignal.timeout(2_000) })).status;
          } catch {
            status = 'down';
          }
          (log.get(s.name) ?? log.set(s.name, []).get(s.name)!).push([Date.now(), status]);
        }),
      );
      await sleep(everyMs);
    }
  })();
  return {
    log,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

// ------------------------------------------------------------------ MQTT publishing

/**
 * A PublishClient for the simulator that adds `vehicle@ts` of every reading the broker accepted for
 * delivery to `acked`: a PUBACK without error and without MQTT 5 reason 16 (no matching subscriber,
 * which the simulator sends again); those are counted in `noSubscriber`.
 */
export function trackAcks(client: MqttClient, acked: Set<string>, counts = { noSubscriber: 0 }): PublishClient {
  const withReasons = withPubackReasons(client); // mqtt.js alone does not show the PUBACK's reason code
  return {
    publish(topic, message, opts, callback) {
      return withReasons.publish(topic, message, opts, (err, ack) => {
        if (ack?.reasonCode === NO_MATCHING_SUBSCRIBERS) counts.noSubscriber++;
        else if (!err) acked.add(`${topic.split('/')[1]}@${(JSON.parse(message) as { ts: number }).ts}`);
        callback(err, ack);
      });
    },
  };
}

export interface PublishOutcome {
  acked: boolean;
  error?: string;
  timedOut?: boolean;
  ms: number;
}

/** One QoS 1 publish; resolves when its callback ran (PUBACK or error) or after timeoutMs. */
export function publishOnce(client: MqttClient, topic: string, payload: string | Buffer, timeoutMs = 15_000): Promise<PublishOutcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ acked: false, timedOut: true, ms: Date.now() - t0 }), timeoutMs);
    client.publish(topic, payload, { qos: 1 }, (err) => {
      clearTimeout(timer);
      resolve(err ? { acked: false, error: err.message, ms: Date.now() - t0 } : { acked: true, ms: Date.now() - t0 });
    });
  });
}

// ------------------------------------------------------------------ reading topics

/** Reads `topic` from its beginning to its end as of now (read_committed). */
export async function readTopic(kafka: Kafka, topic: string, each: (m: KafkaMessage, partition: number) => unknown, timeoutMs = 90_000): Promise<void> {
  const reader = await startTopicReader(kafka, {
    topic,
    groupIdPrefix: 'faults.reader',
    log: silentLogger,
    timeoutMs,
    onBatch: async (batch) => {
      for (const m of batch.messages) await each(m, batch.partition);
    },
  });
  try {
    await reader.caughtUp;
  } finally {
    await reader.stop();
  }
}

export const header = (m: KafkaMessage, name: string): string | undefined => (m.headers?.[name] === undefined ? undefined : String(m.headers[name]));

export interface Telemetry {
  /** vehicle -> ts -> sensor values (SENSOR_NAMES order); repeats of (vehicle, ts) collapse. */
  readings: Map<string, Map<number, number[]>>;
  partitionOf: Map<string, number>;
  records: number;
  distinct: number;
}

export async function readTelemetry(kafka: Kafka, registryUrl: string, topic: string): Promise<Telemetry> {
  const codec = await createTopicCodec<TelemetryRecord>(adminSchemaStore(registryUrl), topic, 'telemetry', 2);
  const out: Telemetry = { readings: new Map(), partitionOf: new Map(), records: 0, distinct: 0 };
  await readTopic(kafka, topic, async (m, partition) => {
    if (!m.value || header(m, 'pitwall.control') !== undefined) return; // windowing's idle markers
    const r = await codec.decode(m.value);
    out.records++;
    out.partitionOf.set(r.vehicle_id, partition);
    const byTs = out.readings.get(r.vehicle_id) ?? out.readings.set(r.vehicle_id, new Map()).get(r.vehicle_id)!;
    if (!byTs.has(r.ts)) out.distinct++;
    byTs.set(
      r.ts,
      SENSOR_NAMES.map((n) => r[n] as number),
    );
  });
  return out;
}

export interface FeatureRow {
  vehicle: string;
  start: number;
  count: number;
  record: Record<string, unknown>;
}

export async function readFeatures(kafka: Kafka, registryUrl: string, topic: string): Promise<FeatureRow[]> {
  const codec = await createTopicCodec<Record<string, unknown>>(adminSchemaStore(registryUrl), topic, 'features', 1);
  const rows: FeatureRow[] = [];
  await readTopic(kafka, topic, async (m) => {
    const r = await codec.decode(m.value!);
    rows.push({ vehicle: String(r.vehicle_id), start: Number(r.window_start), count: Number(r.event_count), record: r });
  });
  return rows;
}

/** `vehicle@ts` of every reading on windowing's late topic. */
export async function readLate(kafka: Kafka, topic: string): Promise<Set<string>> {
  const late = new Set<string>();
  await readTopic(kafka, topic, (m) => void late.add(`${m.key?.toString()}@${header(m, 'pitwall.late.event_ts')}`)).catch((err: Error) => {
    if (!/does not exist|UNKNOWN_TOPIC/i.test(err.message)) throw err;
  });
  return late;
}

export async function readRecords<T>(kafka: Kafka, registryUrl: string, topic: string, record: string): Promise<T[]> {
  const codec = await createTopicCodec<T>(adminSchemaStore(registryUrl), topic, record, 1);
  const out: T[] = [];
  await readTopic(kafka, topic, async (m) => void (m.value && out.push(await codec.decode(m.value))));
  return out;
}
export type { AlertRecord, IncidentRecord, ScoreRecord };

/** A dead letter: reason, source MQTT topic and raw value. */
export interface DeadLetter {
  reason: string;
  mqttTopic: string;
  value: Buffer;
}

export async function readDlq(kafka: Kafka, topic: string): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  await readTopic(kafka, topic, (m) => void out.push({ reason: header(m, 'pitwall.dlq.reason') ?? '', mqttTopic: header(m, 'pitwall.source.mqtt.topic') ?? '', value: m.value ?? Buffer.alloc(0) }));
  return out;
}

// ------------------------------------------------------------------ windows: batch vs emitted

export interface WindowAccount {
  /** Windows a batch computation over the distinct readings gives. */
  expected: number;
  emitted: number;
  /** Emitted with every reading of the batch window, and identical feature values. */
  complete: number;
  /** Emitted with fewer readings, or not emitted; every missing reading is on the late topic. */
  explainedByLate: number;
  duplicates: string[];
  /** Emitted but not in the batch computation, or with more readings than it. */
  phantom: string[];
  /** Readings missing from the output that are not on the late topic either. */
  unexplained: string[];
  valueMismatches: string[];
}

/**
 * Checks windowing's output against a batch computation over the distinct readings of the
 * telemetry topic (window definition and feature code from @pitwall/common). The only tolerated
 * difference is the documented one: a reading whose window had already been emitted goes to the
 * late topic, so a window may be emitted with fewer readings, or not at all, exactly when its
 * missing readings are there.
 */
export function accountWindows(telemetry: Telemetry, features: FeatureRow[], late: Set<string>, include: (vehicle: string) => boolean = () => true): WindowAccount {
  const batch = new Map<string, { vehicle: string; start: number; events: { ts: number; values: number[] }[] }>();
  for (const [vehicle, byTs] of telemetry.readings) {
    if (!include(vehicle)) continue;
    for (const [ts, values] of byTs) {
      for (const start of windowStartsFor(WINDOW, ts)) {
        const k = `${vehicle}@${start}`;
        (batch.get(k) ?? batch.set(k, { vehicle, start, events: [] }).get(k)!).events.push({ ts, values });
      }
    }
  }
  const acc: WindowAccount = { expected: batch.size, emitted: 0, complete: 0, explainedByLate: 0, duplicates: [], phantom: [], unexplained: [], valueMismatches: [] };
  const emitted = new Map<string, FeatureRow>();
  for (const f of features) {
    if (!include(f.vehicle)) continue;
    const k = `${f.vehicle}@${f.start}`;
    acc.emitted++;
    if (emitted.has(k)) acc.duplicates.push(k);
    emitted.set(k, f);
  }
  for (const [k, w] of batch) {
    const f = emitted.get(k);
    const count = f?.count ?? 0;
    if (count > w.events.length) {
      acc.phantom.push(`${k}: ${count} readings emitted, ${w.events.length} in the topic`);
      continue;
    }
    if (f && count === w.events.length) {
      acc.complete++;
      const batchValues = computeFeatures(w.events);
      const wrong = FEATURE_NAMES.filter((name, i) => f.record[name] !== batchValues[i]);
      if (wrong.length) acc.valueMismatches.push(`${k}: ${wrong.slice(0, 3).join(', ')}`);
      continue;
    }
    const missing = w.events.length - count;
    const lateHere = w.events.filter((e) => late.has(`${w.vehicle}@${e.ts}`)).length;
    if (lateHere >= missing) acc.explainedByLate++;
    else acc.unexplained.push(`${k}: ${f ? `emitted with ${count} of ${w.events.length} readings` : `never emitted (${w.events.length} readings)`}, ${lateHere} on the late topic`);
  }
  for (const k of emitted.keys()) if (!batch.has(k)) acc.phantom.push(`${k}: emitted, no reading in the topic`);
  return acc;
}

// ------------------------------------------------------------------ recovery probes

/**
 * Follows a topic and keeps the producer timestamps of its data records (windowing's idle markers
 * on the telemetry topic are skipped). Recovery is measured on these timestamps, so the follower's
 * own reconnection after a Kafka restart does not count. kafkajs restarts a crashed consumer itself.
 */
export async function tailTopic(kafka: Kafka, topic: string) {
  const stamps: number[] = [];
  const consumer = kafka.consumer({ groupId: `faults.tail.${randomUUID()}`, maxWaitTimeInMs: 250 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) if (m.value && header(m, 'pitwall.control') === undefined) stamps.push(Number(m.timestamp));
    },
  });
  return {
    count: () => stamps.length,
    /** Earliest timestamp at or after t among the records seen so far. */
    firstAfter(t: number): number | undefined {
      let best: number | undefined;
      for (const s of stamps) if (s >= t && (best === undefined || s < best)) best = s;
      return best;
    },
    stop: () => consumer.disconnect().catch(() => {}),
  };
}
