/**
 * Drift of the live windows from the served models' training data (common drift.ts: PSI per
 * feature against the reference in metadata.drift).
 *
 * Every scored window (its raw features in the model's order, before scaling) is binned against
 * the reference of the model that scored it and, for the first MODEL_NAME, of the shadow serving
 * at that moment: counted fleet-wide over the last SCORING_DRIFT_PERIOD_S (per replica: the
 * windows of its partitions) and per vehicle over its last SCORING_DRIFT_VEHICLE_WINDOWS (at most
 * SCORING_DRIFT_MAX_VEHICLES vehicles (0: none), least recently seen forgotten; 2 x 1,080 uint16 = 4.3 kB
 * each with 108 features and 10 bins). A new version starts its counts afresh. A model without a
 * reference (older metadata, imported) reports drift as unavailable, never as zero.
 *
 * Exported: gauges on /metrics computed at scrape time (PSI per feature, the maximum and the
 * features above 0.25, per model and role; never per vehicle), a warning log line naming the top
 * features while drift is significant, and every SCORING_DRIFT_REPORT_MS `model.drift` records
 * (TOPIC_DRIFT_REPORTS, JSON, compacted): one per model and role and replica with the period's
 * counts per bin and the reference shares, so readers sum the replicas' counts and compute the
 * fleet's PSI themselves; and one per vehicle that had windows since the last report (key
 * `vehicle/<id>`), with its top features.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import {
  driftLayout,
  gauge,
  provisionTopics,
  psi,
  PSI_SIGNIFICANT,
  summarizeDrift,
  createSlidingDrift,
  createVehicleDrift,
  type DriftLayout,
  type DriftSummary,
  type Logger,
  type Registry,
  type SlidingDrift,
  type VehicleDrift,
} from '@pitwall/common';
import type { LoadedModel, ModelMetadata, ShadowReportDrift } from '@pitwall/model';

export type DriftRole = 'active' | 'shadow';

/** `model.drift` value for a model and role, key `fleet/<model>/<role>/<instance>`. */
export interface FleetDriftRecord {
  schema: 'pitwall.drift.fleet.v1';
  model: string;
  version: string;
  role: DriftRole;
  instance: string;
  /** The period ends here and began period_ms earlier (at most; see createSlidingDrift). */
  at: number;
  period_ms: number;
  /** False: the model has no drift reference; nothing else below is then present but windows. */
  available: boolean;
  windows: number;
  summary?: DriftSummary;
  /** Per feature, in `features` order: live counts per bin and the reference's shares. */
  features?: string[];
  counts?: number[][];
  proportions?: number[][];
}

/** `model.drift` value for a vehicle, key `vehicle/<id>`: its last windows against the active model's reference. */
export interface VehicleDriftRecord extends DriftSummary {
  schema: 'pitwall.drift.vehicle.v1';
  vehicle_id: string;
  model: string;
  version: string;
  at: number;
}

export type DriftRecord = FleetDriftRecord | VehicleDriftRecord;

export interface DriftOptions {
  periodMs: number;
  vehicleWindows: number;
  maxVehicles: number;
  /** The model the shadow shadows (the first MODEL_NAME) and its shadow, if one serves. */
  shadowed?: { name: string; current(): LoadedModel | undefined };
  instance: string;
  log: Logger;
  now?: () => number;
  /** Registers the gauges there. */
  metrics?: Registry;
  /** Features named in logs and summaries. */
  top?: number;
}

export interface DriftMonitor {
  /** A chunk's scored windows of one model: vehicle ids and raw vectors, index for index. Cheap, never throws. */
  observe(meta: Pick<ModelMetadata, 'name' | 'version' | 'features' | 'drift'>, vehicleIds: readonly string[], vectors: readonly Float32Array[]): void;
  /** Per model and role, the period's drift now. */
  fleet(at?: number): FleetDriftRecord[];
  /** Vehicles with windows since the last call. */
  takeVehicles(at?: number): VehicleDriftRecord[];
  shadowDrift(at?: number): ShadowReportDrift | undefined;
  /** Logs a warning per model and role whose drift is significant; returns how many. */
  logSignificant(at?: number): number;
}

interface Tracker {
  name: string;
  version: string;
  role: DriftRole;
  layout: DriftLayout | undefined;
  fleet: SlidingDrift | undefined;
  vehicles: VehicleDrift | undefined;
  bins: Uint16Array;
}

const MIN_CACHE_MS = 1_000;

export function createDriftMonitor(opts: DriftOptions): DriftMonitor {
  const now = opts.now ?? Date.now;
  const top = opts.top ?? 5;
  const log = opts.log.child({ component: 'drift' });
  const trackers = new Map<string, Tracker>();

  const tracker = (role: DriftRole, meta: Pick<ModelMetadata, 'name' | 'version' | 'features' | 'drift'>): Tracker => {
    const key = `${role}\u0000${meta.name}`;
    const known = trackers.get(key);
    if (known && known.version === meta.version) return known;
    let layout: DriftLayout | undefined;
    try {
      layout = meta.drift ? driftLayout(meta.drift, meta.features) : undefined;
    } catch (err) {
      log.warn('drift reference unusable; drift unavailable for this model', { model: meta.name, version: meta.version, reason: (err as Error).message });
    }
    const t: Tracker = {
      name: meta.name,
      version: meta.version,
      role,
      layout,
      fleet: layout ? createSlidingDrift(layout, { periodMs: opts.periodMs }) : undefined,
      vehicles: layout && role === 'active' && opts.maxVehicles > 0 ? createVehicleDrift(layout, { windows: opts.vehicleWindows, maxVehicles: opts.maxVehicles }) : undefined,
      bins: new Uint16Array(meta.features.length),
    };
    trackers.set(key, t);
    cache = undefined;
    return t;
  };

  let cache: { at: number; records: FleetDriftRecord[] } | undefined;
  const fleetNow = (at: number): FleetDriftRecord[] => {
    if (cache && at - cache.at < MIN_CACHE_MS && at >= cache.at) return cache.records;
    const records: FleetDriftRecord[] = [];
    for (const t of trackers.values()) {
      const base = { schema: 'pitwall.drift.fleet.v1' as const, model: t.name, version: t.version, role: t.role, instance: opts.instance, at, period_ms: opts.periodMs };
      if (!t.layout || !t.fleet) {
        records.push({ ...base, available: false, windows: 0 });
        continue;
      }
      const { counts, windows } = t.fleet.counts(at);
      const drift = t.layout.drift(counts);
      const o = t.layout.offsets;
      records.push({
        ...base,
        available: true,
        windows,
        summary: summarizeDrift(drift, windows, top),
        features: [...t.layout.features],
        counts: t.layout.features.map((_, f) => Array.from(counts.subarray(o[f], o[f + 1]))),
        proportions: t.layout.reference.features.map((f) => f.proportions),
      });
    }
    cache = { at, records };
    return records;
  };

  if (opts.metrics) {
    const labelNames = ['model', 'role'] as const;
    const each = (fn: (r: FleetDriftRecord) => void): void => fleetNow(now()).forEach(fn);
    gauge(opts.metrics, {
      name: 'pitwall_scoring_drift_psi',
      help: 'Population stability index of each feature: live windows of the last SCORING_DRIFT_PERIOD_S against the training data (metadata.drift); absent without a reference or windows.',
      labelNames: ['model', 'role', 'feature'],
      collect() {
        this.reset();
        each((r) => {
          if (!r.summary || r.windows === 0) return;
          r.features!.forEach((feature, f) => {
            const p = psiOf(r, f);
            if (p !== null) this.set({ model: r.model, role: r.role, feature }, p);
          });
        });
      },
    });
    gauge(opts.metrics, {
      name: 'pitwall_scoring_drift_max_psi',
      help: 'Highest feature PSI of the period per model and role (alert on > 0.25); absent without a reference or windows.',
      labelNames,
      collect() {
        this.reset();
        each((r) => r.summary?.max_psi != null && this.set({ model: r.model, role: r.role }, r.summary.max_psi));
      },
    });
    gauge(opts.metrics, {
      name: 'pitwall_scoring_drift_significant_features',
      help: 'Features whose PSI is above 0.25 (a significant shift), per model and role.',
      labelNames,
      collect() {
        this.reset();
        each((r) => r.summary && r.windows > 0 && this.set({ model: r.model, role: r.role }, r.summary.significant));
      },
    });
    gauge(opts.metrics, {
      name: 'pitwall_scoring_drift_windows',
      help: 'Windows in the drift period per model and role.',
      labelNames,
      collect() {
        this.reset();
        each((r) => this.set({ model: r.model, role: r.role }, r.windows));
      },
    });
    gauge(opts.metrics, {
      name: 'pitwall_scoring_drift_available',
      help: '1 when the model has a drift reference (metadata.drift), 0 when drift is unavailable.',
      labelNames,
      collect() {
        this.reset();
        each((r) => this.set({ model: r.model, role: r.role }, r.available ? 1 : 0));
      },
    });
  }

  const summaryOf = (role: DriftRole, name: string, at: number): (DriftSummary & { version: string }) | null => {
    const r = fleetNow(at).find((x) => x.role === role && x.model === name);
    return r?.summary ? { version: r.version, ...r.summary } : null;
  };

  return {
    observe(meta, vehicleIds, vectors) {
      if (vectors.length === 0) return;
      const at = now();
      const active = tracker('active', meta);
      const shadowed = opts.shadowed?.name === meta.name;
      const shadowModel = shadowed ? opts.shadowed!.current() : undefined;
      const shadow = shadowModel ? tracker('shadow', shadowModel.metadata) : undefined;
      // A shadow that stopped serving stops reporting.
      if (shadowed && !shadowModel) trackers.delete(`shadow\u0000${meta.name}`);
      for (const t of [active, shadow]) {
        if (!t?.layout) continue;
        for (let i = 0; i < vectors.length; i++) {
          const bins = t.layout.bin(vectors[i]!, t.bins);
          t.fleet!.add(bins, at);
          t.vehicles?.add(vehicleIds[i]!, bins);
        }
      }
      cache = undefined;
    },
    fleet: (at = now()) => fleetNow(at),
    takeVehicles(at = now()) {
      const out: VehicleDriftRecord[] = [];
      for (const t of trackers.values()) {
        if (!t.vehicles || !t.layout) continue;
        for (const id of t.vehicles.takeChanged()) {
          const c = t.vehicles.counts(id);
          if (!c) continue;
          out.push({ schema: 'pitwall.drift.vehicle.v1', vehicle_id: id, model: t.name, version: t.version, at, ...summarizeDrift(t.layout.drift(c.counts), c.windows, top) });
        }
      }
      return out;
    },
    shadowDrift(at = now()) {
      const name = opts.shadowed?.name;
      if (name === undefined) return undefined;
      return { period_ms: opts.periodMs, active: summaryOf('active', name, at), shadow: summaryOf('shadow', name, at) };
    },
    logSignificant(at = now()) {
      let n = 0;
      for (const r of fleetNow(at)) {
        const s = r.summary;
        if (!s || s.max_psi === null || s.max_psi <= PSI_SIGNIFICANT) continue;
        // Small samples read high: an unchanged fleet's PSI is about (bins - 1) / windows per feature,
        // and the highest of 108 such features passed 0.25 at 100 windows of 10 bins. The warning
        // waits until that noise is at most 0.01 (900 windows with 10 bins); gauges and records
        // carry the window count for readers to judge.
        const bins = Math.max(0, ...(r.proportions ?? []).map((p) => p.length));
        if (r.windows < LOG_MIN_WINDOWS_PER_BIN * (bins - 1)) continue;
        n++;
        log.warn('model drift significant: live windows differ from the training data', {
          model: r.model,
          version: r.version,
          role: r.role,
          windows: r.windows,
          significantFeatures: s.significant,
          top: s.top.map((d) => `${d.feature} ${d.psi.toFixed(3)}`).join(', '),
        });
      }
      return n;
    },
  };
}

/** Windows per bin (beyond the first) before significant fleet drift is logged: noise of about 0.01 PSI. */
export const LOG_MIN_WINDOWS_PER_BIN = 100;

/** PSI of feature f of a fleet record (null without windows), from its counts and shares. */
const psiOf = (r: FleetDriftRecord, f: number): number | null => psi(r.proportions![f]!, r.counts![f]!);

export interface DriftReporter {
  start(): Promise<void>;
  flush(): Promise<number>;
  close(): Promise<void>;
}

/** Most records per send (vehicle records are ~0.5 kB). */
const SEND_CHUNK = 500;

/** Publishes the monitor's fleet and vehicle records to `topic` every `intervalMs` and on close, and logs significant drift. */
export function createDriftReporter(opts: {
  kafka: Pick<Kafka, 'producer' | 'admin'>;
  topic: string;
  partitions: number;
  monitor: Pick<DriftMonitor, 'fleet' | 'takeVehicles' | 'logSignificant'>;
  intervalMs: number;
  log: Logger;
  now?: () => number;
}): DriftReporter {
  const now = opts.now ?? Date.now;
  const log = opts.log.child({ component: 'drift-reporter' });
  const producer: Producer = opts.kafka.producer({ allowAutoTopicCreation: false });
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<number> = Promise.resolve(0);
  let closed = false;

  const send = async (): Promise<number> => {
    const at = now();
    opts.monitor.logSignificant(at);
    const messages: Message[] = [
      ...opts.monitor.fleet(at).map((r) => ({ key: `fleet/${r.model}/${r.role}/${r.instance}`, value: JSON.stringify(r) })),
      ...opts.monitor.takeVehicles(at).map((r) => ({ key: `vehicle/${r.vehicle_id}`, value: JSON.stringify(r) })),
    ];
    for (let i = 0; i < messages.length; i += SEND_CHUNK) await producer.send({ topic: opts.topic, acks: -1, messages: messages.slice(i, i + SEND_CHUNK) });
    return messages.length;
  };
  // One send at a time; a failed send loses that period's vehicle records (the next period sends the vehicles seen again).
  const flush = (): Promise<number> =>
    (sending = sending.then(send, send).catch((err: unknown) => {
      log.warn('drift report not published', { err });
      return 0;
    }));

  return {
    async start() {
      // Compacted: the latest record per model/role/replica and per vehicle; old replicas' and
      // vehicles' records are deleted after a day.
      await provisionTopics(opts.kafka, [{ topic: opts.topic, configEntries: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(86_400_000) } }], { partitions: opts.partitions });
      await producer.connect();
      timer = setInterval(() => void flush(), opts.intervalMs);
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
