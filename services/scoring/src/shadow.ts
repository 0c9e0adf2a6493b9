/**
 * Shadow version: a second model scoring the same windows as the active one, in the same chunk,
 * whose results are only counted (metrics and `model.shadow` reports, format in agreement.ts),
 * never produced as alerts or scores. A shadow candidate passes the same checks as an active one
 * (ModelHolder.validate); a shadow prediction that throws or is not finite is counted and dropped,
 * and active scoring goes on as if there were no shadow.
 */
import type { Kafka, Producer } from 'kafkajs';
import { provisionTopics, type Logger } from '@pitwall/common';
import {
  type AgreementCounts,
  buildShadowReport,
  createAgreementBook,
  formatOf,
  isAnomalous,
  type LoadedModel,
  type ModelMetadata,
  scoreBatch,
  type ShadowReport,
  type ShadowReportDrift,
  tallyAgreement,
} from '@pitwall/model';
import type { Offer } from './model-holder.js';
import { labelled, METRICS } from './metrics.js';

type CounterSink = { inc(name: string, by?: number): void };

/** What a chunk's shadow scoring found; counted only once the chunk's send succeeded. */
export interface ShadowTally {
  active: string;
  shadow: string;
  counts: AgreementCounts;
}

export interface ShadowScorer {
  current(): LoadedModel | undefined;
  /** Serves the candidate as shadow when `validate` finds nothing wrong; otherwise disposes it. */
  offer(candidate: LoadedModel, validate: (m: LoadedModel) => string | undefined): Offer;
  /** No shadow from the next chunk on. */
  clear(): void;
  /**
   * Scores `vectors` with the shadow (if any) and pairs its decisions with the active ones. Never
   * throws; undefined when there is no shadow or its prediction failed.
   */
  observe(active: Pick<ModelMetadata, 'version'>, activeAnomalous: readonly boolean[], vectors: readonly Float32Array[]): ShadowTally | undefined;
  /** Counts a tally (after the chunk was produced, so redelivered windows are counted like their scores). */
  record(tally: ShadowTally): void;
  /** Reports for the period since the last call, one per version pair; none when nothing was scored and no shadow serves. */
  takeReports(now: number): ShadowReport[];
  dispose(): void;
}

export function createShadowScorer(opts: {
  model: string;
  instance: string;
  log: Logger;
  counters: CounterSink;
  now?: () => number;
  /** Drift of the live windows against the active and the shadow model's references, for the reports (drift.ts). */
  drift?: (at: number) => ShadowReportDrift | undefined;
}): ShadowScorer {
  const log = opts.log.child({ component: 'shadow' });
  const now = opts.now ?? Date.now;
  const book = createAgreementBook();
  let shadow: LoadedModel | undefined;
  let from = now();
  let lastActive: string | undefined;
  const label = (m: LoadedModel): string => `${m.metadata.name}@${m.metadata.version}`;

  // observe() reads the shadow once and scores synchronously, so a replaced one is never in use.
  const retire = (m: LoadedModel | undefined): void => void m?.model.dispose();

  return {
    current: () => shadow,
    offer(candidate, validate) {
      const reason = validate(candidate);
      if (reason) {
        log.warn('shadow model refused; active scoring is unaffected', { candidate: label(candidate), dir: candidate.dir, reason });
        candidate.model.dispose();
        return { accepted: false, reason };
      }
      const old = shadow;
      shadow = candidate;
      retire(old);
      log.info('shadow model serving', { shadow: label(candidate), format: formatOf(candidate.model), threshold: candidate.metadata.threshold, replaced: old ? label(old) : null });
      return { accepted: true };
    },
    clear() {
      if (!shadow) return;
      log.info('shadow model removed', { shadow: label(shadow) });
      const old = shadow;
      shadow = undefined;
      retire(old);
    },
    observe(active, activeAnomalous, vectors) {
      const served = shadow;
      if (!served || vectors.length === 0) return undefined;
      try {
        const scored = scoreBatch(served.model, served.metadata, vectors);
        const bad = scored.findIndex((s) => !Number.isFinite(s.score));
        if (bad >= 0) throw new Error(`non-finite shadow score (${scored[bad]!.score}) on window ${bad}`);
        const shadowAnomalous = scored.map((s) => isAnomalous(s, served.metadata));
        return { active: active.version, shadow: served.metadata.version, counts: tallyAgreement(activeAnomalous, shadowAnomalous) };
      } catch (err) {
        opts.counters.inc(METRICS.shadowFailures);
        log.warn('shadow scoring failed; the chunk is scored by the active model only', { shadow: label(served), reason: (err as Error).message });
        return undefined;
      }
    },
    record(t) {
      const c = t.counts;
      const windows = c.both + c.active_only + c.shadow_only + c.neither;
      lastActive = t.active;
      book.add(t.active, t.shadow, c);
      opts.counters.inc(labelled(METRICS.shadowWindows, { role: 'active', version: t.active }), windows);
      opts.counters.inc(labelled(METRICS.shadowWindows, { role: 'shadow', version: t.shadow }), windows);
      opts.counters.inc(labelled(METRICS.shadowAlerts, { role: 'active', version: t.active }), c.both + c.active_only);
      opts.counters.inc(labelled(METRICS.shadowAlerts, { role: 'shadow', version: t.shadow }), c.both + c.shadow_only);
      for (const outcome of ['both', 'active_only', 'shadow_only', 'neither'] as const) {
        opts.counters.inc(labelled(METRICS.shadowAgreement, { outcome }), c[outcome]);
      }
    },
    takeReports(at) {
      const tallies = book.take();
      // A shadow that saw no window still reports (zero counts), so operators see it is configured.
      if (tallies.length === 0 && shadow && lastActive !== undefined) {
        tallies.push({ active: lastActive, shadow: shadow.metadata.version, counts: { both: 0, active_only: 0, shadow_only: 0, neither: 0 } });
      }
      const drift = tallies.length ? opts.drift?.(at) : undefined;
      const reports = tallies.map((t) => buildShadowReport(t, { model: opts.model, instance: opts.instance, from, to: at, drift }));
      from = at;
      return reports;
    },
    dispose() {
      retire(shadow);
      shadow = undefined;
    },
  };
}

export interface ShadowReporter {
  start(): Promise<void>;
  /** Publishes a last report and disconnects. */
  close(): Promise<void>;
  /** Publishes the reports of the period now (also used by the timer). */
  flush(): Promise<number>;
}

/** Publishes ShadowScorer reports to `topic` every `intervalMs` and on close. */
export function createShadowReporter(opts: {
  kafka: Pick<Kafka, 'producer' | 'admin'>;
  topic: string;
  scorer: Pick<ShadowScorer, 'takeReports'>;
  intervalMs: number;
  log: Logger;
  counters: CounterSink;
  now?: () => number;
}): ShadowReporter {
  const now = opts.now ?? Date.now;
  const log = opts.log.child({ component: 'shadow-reporter' });
  const producer: Producer = opts.kafka.producer({ allowAutoTopicCreation: false });
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<number> = Promise.resolve(0);
  let closed = false;

  const send = async (): Promise<number> => {
    const reports = opts.scorer.takeReports(now());
    if (reports.length === 0) return 0;
    await producer.send({ topic: opts.topic, acks: -1, messages: reports.map((r) => ({ key: r.model, value: JSON.stringify(r) })) });
    opts.counters.inc(METRICS.shadowReports, reports.length);
    for (const r of reports) {
      const drift = r.drift && { active: r.drift.active?.max_psi ?? null, shadow: r.drift.shadow?.max_psi ?? null };
      log.info('shadow report', { active: r.active, shadow: r.shadow, agreement: r.agreement, maxPsi: drift });
    }
    return reports.length;
  };
  // One send at a time, in order; a failed send loses that period's report (counters keep it).
  const flush = (): Promise<number> =>
    (sending = sending.then(send, send).catch((err: unknown) => {
      log.warn('shadow report not published', { err });
      return 0;
    }));

  return {
    async start() {
      await provisionTopics(opts.kafka, [{ topic: opts.topic, numPartitions: 1 }], { partitions: 1 });
      await producer.connect();
      timer = setInterval(() => void flush(), opts.intervalMs); // flush() logs a failed send and resolves
      timer.unref();
    },
    flush,
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      await flush();
      await producer.disconnect();
    },
  };
}
