/**
 * Prometheus metrics of a service process, with prom-client. main.ts makes one registry
 * (createMetricsRegistry, with the process metrics of prom-client: CPU, heap, GC, event-loop lag)
 * and passes it explicitly to what registers metrics: the counters (counters.ts), the service's
 * histograms, the readiness gauge, the consumer lag gauges; startHealthServer serves it on
 * GET /metrics. Nothing here reads the environment or uses prom-client's global registry.
 *
 * Shared metric names (every service that has the thing):
 *   pitwall_ready                                    1 when /readyz answers 200, else 0
 *   pitwall_readiness_check{check}                   1 ok / 0 failing, per readiness check
 *   pitwall_consumer_committed_lag_records{group,topic,partition}
 *                                                    end offset minus the group's committed offset,
 *                                                    from the admin API every few seconds
 *   pitwall_consumer_fetch_lag_records{group,topic,partition}
 *                                                    end offset minus the last offset this process
 *                                                    fetched, from kafkajs's batch events
 */
import type { ServerResponse } from 'node:http';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from './log.js';
import { partitionLag } from './kafka.js';

export { Registry } from 'prom-client';
export type { Gauge, Histogram } from 'prom-client';

/** Seconds, from 5 ms to 10 minutes: event-time and end-to-end latencies. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600]);
/** Seconds, from 0.5 ms to 10 s: work done in one go (a chunk scored). */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export interface MetricsRegistryOptions {
  /** prom-client's default process metrics (CPU, memory, heap, GC, event-loop lag, handles); default true. */
  processMetrics?: boolean;
}

/** The one registry of a service process. */
export function createMetricsRegistry(opts: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

export interface HistogramSpec<L extends string = string> {
  name: string;
  help: string;
  buckets: readonly number[];
  labelNames?: readonly L[];
}

/** A histogram in `registry`; the one already there under that name, if any (two instances of a core in one process share it). */
export function histogram<L extends string = string>(registry: Registry, spec: HistogramSpec<L>): Histogram<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Histogram<L>;
  return new Histogram<L>({ name: spec.name, help: spec.help, buckets: [...spec.buckets], labelNames: [...(spec.labelNames ?? [])], registers: [registry] });
}

/** A gauge in `registry`; the one already there under that name, if any. */
export function gauge<L extends string = string>(registry: Registry, spec: { name: string; help: string; labelNames?: readonly L[]; collect?: (this: Gauge<L>) => void }): Gauge<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Gauge<L>;
  return new Gauge<L>({ name: spec.name, help: spec.help, labelNames: [...(spec.labelNames ?? [])], registers: [registry], ...(spec.collect ? { collect: spec.collect } : {}) });
}

/** Seconds from `fromMs` to `nowMs`, never negative (a clock ahead of ours counts as 0). */
export function secondsSince(fromMs: number, nowMs: number): number {
  return Math.max(0, nowMs - fromMs) / 1000;
}

/** Answers a scrape: the registry in the Prometheus text format. */
export function serveMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${(err as Error).message}\n`),
  );
}

/**
 * Readiness as gauges, read at every scrape: pitwall_readiness_check{check} (1 ok, 0 failing) for
 * every check `checks` names, and pitwall_ready (1 when all hold). Pass a Readiness tracker's
 * `checks`, or a function of your own.
 */
export function exportReadiness(registry: Registry, checks: () => Record<string, boolean>): void {
  gauge(registry, {
    name: 'pitwall_readiness_check',
    help: 'Readiness check of the service: 1 passes, 0 fails (GET /readyz names the failing ones and why).',
    labelNames: ['check'],
    collect() {
      this.reset();
      for (const [check, ok] of Object.entries(checks())) this.set({ check }, ok ? 1 : 0);
    },
  });
  gauge(registry, {
    name: 'pitwall_ready',
    help: 'Whether the service is ready (GET /readyz answers 200): 1 or 0.',
    collect() {
      this.set(Object.values(checks()).every(Boolean) ? 1 : 0);
    },
  });
}

const FETCH_LAG = {
  name: 'pitwall_consumer_fetch_lag_records',
  help:
    "Records of a partition after the last one this process fetched: its consumer's position lag (kafkajs's offsetLag at the end of each batch; " +
    'set when a batch of the partition was processed). The backlog the process has not read yet. See pitwall_consumer_committed_lag_records for the committed view.',
  labelNames: ['group', 'topic', 'partition'] as const,
};

const COMMITTED_LAG = {
  name: 'pitwall_consumer_committed_lag_records',
  help:
    "Records of a partition after the consumer group's committed offset (the log end offset minus the committed offset, from the admin API every few seconds; " +
    'from the log start when nothing is committed). What a restarted consumer would read again. For windowing the committed offset is the first offset ' +
    'of the earliest open window (exactly-once resume), so this includes up to one window plus WINDOWING_VEHICLE_IDLE_MS of records by design: ' +
    'its backlog is pitwall_consumer_fetch_lag_records.',
  labelNames: ['group', 'topic', 'partition'] as const,
};

/**
 * pitwall_consumer_fetch_lag_records for one kafkajs consumer, from its END_BATCH_PROCESS events
 * (no requests of its own). `group` labels the series until the consumer's GROUP_JOIN names its
 * group. Series of partitions the consumer no longer owns are dropped on a rejoin, all on STOP.
 */
export function watchConsumerLag(registry: Registry, consumer: Pick<Consumer, 'on' | 'events'>, group = 'unknown'): void {
  const lag = gauge(registry, FETCH_LAG);
  let groupId = group;
  const mine = new Map<string, { group: string; topic: string; partition: string }>();
  const drop = (keep: (l: { topic: string; partition: string }) => boolean): void => {
    for (const [key, labels] of mine) {
      if (keep(labels)) continue;
      lag.remove(labels);
      mine.delete(key);
    }
  };
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const assignment = payload.memberAssignment;
    if (payload.groupId !== groupId) drop(() => false);
    groupId = payload.groupId;
    drop((l) => (assignment[l.topic] ?? []).includes(Number(l.partition)));
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const labels = { group: groupId, topic: payload.topic, partition: String(payload.partition) };
    const value = Number(payload.offsetLag);
    if (!Number.isFinite(value)) return;
    lag.set(labels, Math.max(0, value));
    mine.set(`${labels.topic}\u0000${labels.partition}`, labels);
  });
  consumer.on(consumer.events.STOP, () => drop(() => false));
}

export interface ConsumerLagPoller {
  /** One refresh now (the timer does it every intervalMs). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * pitwall_consumer_committed_lag_records for the given consumer groups, refreshed every
 * `intervalMs` (5 s): per group one OffsetFetch, per topic one ListOffsets, with one admin client
 * and no retries (a failed refresh keeps the last values and is logged once until one succeeds).
 */
export function startConsumerLagPoller(opts: {
  kafka: Pick<Kafka, 'admin'>;
  registry: Registry;
  groups: readonly { groupId: string; topics: readonly string[] }[];
  intervalMs?: number;
  log?: Logger;
}): ConsumerLagPoller {
  const lag = gauge(opts.registry, COMMITTED_LAG);
  const intervalMs = opts.intervalMs ?? 5_000;
  let admin: { client: Admin; connected: boolean } | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let failing = false;

  const once = async (): Promise<void> => {
    const a = (admin ??= { client: opts.kafka.admin({ retry: { retries: 0 } }), connected: false });
    try {
      if (!a.connected) {
        await a.client.connect();
        a.connected = true;
      }
      const ends = new Map<string, Map<number, { high: bigint; low: bigint }>>();
      for (const topic of new Set(opts.groups.flatMap((g) => g.topics))) {
        const offsets = await a.client.fetchTopicOffsets(topic);
        ends.set(topic, new Map(offsets.map((o) => [o.partition, { high: BigInt(o.high), low: BigInt(o.low) }])));
      }
      for (const { groupId, topics } of opts.groups) {
        const committed = await a.client.fetchOffsets({ groupId, topics: [...topics] });
        for (const { topic, partitions } of committed) {
          for (const { partition, offset } of partitions) {
            const end = ends.get(topic)?.get(partition);
            if (!end || stopped) continue;
            lag.set({ group: groupId, topic, partition: String(partition) }, Number(partitionLag(offset, end)));
          }
        }
      }
      if (failing) opts.log?.info('consumer lag readable again', { groups: opts.groups.map((g) => g.groupId) });
      failing = false;
    } catch (err) {
      if (!failing && !stopped) opts.log?.warn('consumer lag not readable; keeping the last values', { err });
      failing = true;
      admin = undefined;
      void a.client.disconnect().catch(() => {});
    }
  };
  const tick = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    return (running ??= once().finally(() => (running = undefined)));
  };
  // Fire and forget: once() catches and logs its own failures, and stop() waits for the one running.
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  void tick();
  return {
    refresh: tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await admin?.client.disconnect().catch(() => {});
    },
  };
}
