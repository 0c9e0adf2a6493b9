/**
 * Drives a fleet (or a CSV replay) onto MQTT in paced ticks. A tick publishes one reading per car;
 * event time advances `timeScale` times faster than the wall clock, so tick k of the fleet is due
 * at wall time start + k * 1000 / ratePerCarHz / timeScale ms with event time
 * startTs + k * 1000 / ratePerCarHz. A late tick is published at once, without sleeping.
 *
 * Publishes are not awaited one by one: the whole tick is handed to the client and acknowledged
 * in flight. `done` and `stop()` resolve only when every publish handed over has been settled
 * (PUBACK for QoS 1). If acknowledgements fall behind by more than maxInFlight messages, ticks wait.
 *
 * Like a real car's MQTT client, a reading is kept until the broker took it for someone: mqtt.js
 * resends QoS 1 publishes that were in flight or queued while the connection was down, and the
 * simulator itself sends a reading again (with backoff, until stop()) when mqtt.js gave it up with
 * "Connection closed" or when the PUBACK says no subscriber matched (MQTT 5 reason 16: e.g. right
 * after a broker restart, before ingest has subscribed again). A reading larger than the broker's
 * maximum packet size fails at once: mqtt.js would otherwise resend it on every reconnect forever.
 *
 * Replay publishes the given readings in event-time order, grouping equal timestamps into one tick
 * and pacing by the gaps between them. Their timestamps are kept unless startTs is given, which
 * shifts the whole replay to begin there.
 */
import { deferred, NO_MATCHING_SUBSCRIBERS, publishPacketSize, type Logger, type Registry } from '@pitwall/common';
import type { Fleet, Reading, ResolvedFailure } from './fleet.js';
import type { GroundTruthEvent } from './failures.js';
import { payloadJson, telemetryTopic } from './payload.js';
import { COUNTERS, METRICS, createCounters } from './metrics.js';

/**
 * The part of an mqtt.js client the simulator uses. A connected MqttClient satisfies it, but only
 * withPubackReasons(client) (common) tells the callback a PUBACK's reason code.
 */
export interface PublishClient {
  publish(topic: string, message: string, opts: { qos: 0 | 1 }, callback: (err?: Error, ack?: { reasonCode?: number }) => void): unknown;
}

export interface SimulatorDeps {
  client: PublishClient;
  fleet: Fleet;
  log: Logger;
  /** Readings per car per second of event time. Default 1. */
  ratePerCarHz?: number;
  /** Event time runs this many times faster than wall time. Default 1. */
  timeScale?: number;
  /** Event time of the first tick. Default Date.now() at start(); for replay, default: keep timestamps. */
  startTs?: number;
  /** Event-time span after which the simulator stops by itself. Default: run forever. */
  durationMs?: number;
  /** If given, publish these instead of the fleet. */
  replay?: readonly Reading[];
  qos?: 0 | 1;
  /** Called once per injected failure, when the first tick at or after its onset is published. */
  groundTruth?: (e: GroundTruthEvent) => void;
  /** Unacknowledged publishes above which ticks wait. Default 10_000. */
  maxInFlight?: number;
  /** The broker's maximum packet size (MQTT 5 CONNACK), if it advertised one. */
  maxPacketSize?: () => number | undefined;
  /** First delay before a reading is sent again (doubling up to 30 s). Default 1000. */
  resendDelayMs?: number;
  /** Where the counters are exported (main.ts serves it on /metrics); a private one when absent. */
  metrics?: Registry;
}

export interface SimulatorStats {
  /** Publishes acknowledged (QoS 1) or written (QoS 0). */
  published: number;
  ticks: number;
  failed: number;
  inFlight: number;
}

export interface Simulator {
  start(): void;
  /** Stops ticking and resolves once every publish already handed to the client has settled. */
  stop(): Promise<void>;
  /** Resolves when durationMs has elapsed, the replay is exhausted, or stop() finished. */
  readonly done: Promise<void>;
  stats(): SimulatorStats;
}

interface Tick {
  ts: number;
  readings(): readonly Reading[];
}

export function createSimulator(deps: SimulatorDeps): Simulator {
  const rate = deps.ratePerCarHz ?? 1;
  const timeScale = deps.timeScale ?? 1;
  const qos = deps.qos ?? 1;
  const maxInFlight = deps.maxInFlight ?? 10_000;
  const resendDelayMs = deps.resendDelayMs ?? 1000;
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerCarHz must be > 0, got ${rate}`);
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`timeScale must be > 0, got ${timeScale}`);
  if (deps.durationMs !== undefined && !(deps.durationMs >= 0)) throw new RangeError(`durationMs must be >= 0, got ${deps.durationMs}`);
  const log = deps.log;
  const counters = createCounters(COUNTERS, deps.metrics);

  let started = false;
  let stopped = false;
  let inFlight = 0;
  let drainWaiters: { limit: number; resolve: () => void }[] = [];
  let cancelSleep: (() => void) | undefined;
  const { promise: done, resolve: resolveDone, reject: rejectDone } = deferred();
  done.catch(() => {}); // the caller may only await stop(); the rejection is logged below

  const settle = (err?: Error): void => {
    inFlight -= 1;
    if (err) {
      counters.inc(METRICS.publishFailed);
      const failed = counters.get(METRICS.publishFailed);
      if (failed === 1 || failed % 1000 === 0) log.warn('publish failed', { err, failed });
    } else {
      counters.inc(METRICS.published);
    }
    drainWaiters = drainWaiters.filter((w) => (inFlight <= w.limit ? (w.resolve(), false) : true));
  };
  const drained = (limit: number): Promise<void> => (inFlight <= limit ? Promise.resolve() : new Promise((resolve) => drainWaiters.push({ limit, resolve })));

  const resends = new Map<NodeJS.Timeout, () => void>();
  const send = (topic: string, payload: string, attempt: number): void => {
    const max = deps.maxPacketSize?.();
    const size = publishPacketSize(topic, Buffer.byteLength(payload), { qos, protocolVersion: 5 });
    if (max !== undefined && size > max) {
      settle(new Error(`a packet of ${size} bytes exceeds the broker's maximum packet size of ${max}`));
      return;
    }
    try {
      deps.client.publish(topic, payload, { qos }, (err, ack) => {
        const undelivered = err ? /connection closed/i.test(err.message) : qos > 0 && ack?.reasonCode === NO_MATCHING_SUBSCRIBERS;
        if (!undelivered) return settle(err ?? undefined);
        if (stopped) return settle(err ?? new Error('no subscriber matched (MQTT reason 16)'));
        counters.inc(METRICS.resent);
        const again = (): void => {
          resends.delete(timer);
          send(topic, payload, attempt + 1);
        };
        const timer = setTimeout(again, Math.min(30_000, resendDelayMs * 2 ** Math.min(attempt, 15)));
        resends.set(timer, again);
      });
    } catch (err) {
      settle(err as Error);
    }
  };
  const publish = (r: Reading): void => {
    inFlight += 1;
    send(telemetryTopic(r.vehicleId), payloadJson(r), 0);
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      cancelSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  const pending: ResolvedFailure[] = deps.replay ? [] : [...(deps.fleet.failures ?? [])].sort((a, b) => a.onsetTs - b.onsetTs);
  const announce = (ts: number): void => {
    while (pending.length > 0 && pending[0]!.onsetTs <= ts) {
      const f = pending.shift()!;
      const e: GroundTruthEvent = { vehicleId: f.vehicleId, mode: f.mode, onsetTs: f.onsetTs };
      if (f.sensor !== undefined) e.sensor = f.sensor;
      log.info('failure injected', { vehicleId: e.vehicleId, mode: e.mode, onsetTs: e.onsetTs, sensor: e.sensor });
      counters.inc(METRICS.failuresInjected);
      try {
        deps.groundTruth?.(e);
      } catch (err) {
        log.error('ground truth callback failed', { err, vehicleId: e.vehicleId, mode: e.mode });
      }
    }
  };

  const run = async (): Promise<void> => {
    const ticks = deps.replay ? replayTicks(deps.replay, deps.startTs) : fleetTicks(deps.fleet, deps.startTs ?? Date.now(), 1000 / rate);
    const wallStart = performance.now();
    let firstTs: number | undefined;
    for (const tick of ticks) {
      firstTs ??= tick.ts;
      if (deps.durationMs !== undefined && tick.ts - firstTs >= deps.durationMs) break;
      const wait = wallStart + (tick.ts - firstTs) / timeScale - performance.now();
      await (wait > 0 ? sleep(wait) : yieldToIo());
      if (stopped) break;
      announce(tick.ts);
      for (const r of tick.readings()) publish(r);
      counters.inc(METRICS.ticks);
      if (inFlight > maxInFlight) await drained(Math.floor(maxInFlight / 2));
    }
    await drained(0);
  };

  return {
    start() {
      if (started) return;
      started = true;
      log.info('simulator started', {
        mode: deps.replay ? 'replay' : 'fleet',
        cars: deps.replay ? new Set(deps.replay.map((r) => r.vehicleId)).size : deps.fleet.vehicleIds.length,
        ratePerCarHz: rate,
        timeScale,
        durationMs: deps.durationMs,
      });
      run().then(
        () => {
          log.info('simulator finished', { ...counters.snapshot() });
          resolveDone();
        },
        (err: unknown) => {
          log.error('simulator failed', { err });
          rejectDone(err);
        },
      );
    },
    async stop() {
      stopped = true;
      cancelSleep?.();
      // Readings waiting to be sent again go now, once; what is still undelivered then counts as failed.
      for (const [timer, again] of [...resends]) {
        clearTimeout(timer);
        again();
      }
      if (!started) {
        resolveDone();
        return;
      }
      await done;
    },
    done,
    stats: () => ({
      published: counters.get(METRICS.published),
      ticks: counters.get(METRICS.ticks),
      failed: counters.get(METRICS.publishFailed),
      inFlight,
    }),
  };
}

function* fleetTicks(fleet: Fleet, startTs: number, periodMs: number): Generator<Tick> {
  for (let k = 0; ; k++) {
    const ts = Math.round(startTs + k * periodMs);
    yield { ts, readings: () => fleet.tick(ts) };
  }
}

function* replayTicks(replay: readonly Reading[], startTs: number | undefined): Generator<Tick> {
  const sorted = [...replay].sort((a, b) => a.ts - b.ts); // stable: equal timestamps keep file order
  const shift = startTs === undefined || sorted.length === 0 ? 0 : startTs - sorted[0]!.ts;
  for (let i = 0; i < sorted.length;) {
    const ts = sorted[i]!.ts;
    let j = i;
    while (j < sorted.length && sorted[j]!.ts === ts) j++;
    const group = sorted.slice(i, j).map((r) => (shift === 0 ? r : { ...r, ts: r.ts + shift }));
    yield { ts: ts + shift, readings: () => group };
    i = j;
  }
}
