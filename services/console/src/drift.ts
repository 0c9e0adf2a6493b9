/**
 * Drift as the console shows it, pure, from the `model.drift` records scoring publishes (JSON,
 * services/scoring/src/drift.ts):
 *  - fleet: per model and role, every replica's latest record; the fresh ones (at most `staleMs`
 *    old) of the newest version are combined by summing their counts per bin, and the PSI per
 *    feature is computed from the sum against the reference shares they carry (common drift.ts),
 *    so several scoring replicas (each scoring its partitions' vehicles) give the fleet's drift;
 *  - vehicle: the latest record per vehicle (its last windows against the active model).
 * A record that does not have the expected shape is refused (counted by the reader), never shown.
 */
import { driftReading, psi, summarizeDrift, type DriftSummary, type FeatureDrift, isVehicleId } from '@pitwall/common';

export interface FleetDriftInput {
  schema: 'pitwall.drift.fleet.v1';
  model: string;
  version: string;
  role: 'active' | 'shadow';
  instance: string;
  at: number;
  period_ms: number;
  available: boolean;
  windows: number;
  features?: string[];
  counts?: number[][];
  proportions?: number[][];
}

export interface VehicleDriftInput extends DriftSummary {
  schema: 'pitwall.drift.vehicle.v1';
  vehicle_id: string;
  model: string;
  version: string;
  at: number;
}

/** One model and role, fleet-wide. */
export interface FleetDrift extends DriftSummary {
  model: string;
  version: string;
  role: 'active' | 'shadow';
  /** False: the model has no drift reference (unavailable, not zero). */
  available: boolean;
  /** Replicas whose records were combined. */
  replicas: number;
  period_ms: number;
  at: number;
}

export interface DriftView {
  /** Applies a parsed record; false when it is not a drift record this console understands. */
  apply(value: unknown): boolean;
  fleet(): FleetDrift[];
  vehicle(vehicleId: string): VehicleDriftInput | null;
  /**
   * Across the vehicles with a record: how many, and the median of their highest PSI. One car's
   * windows always sit in few bins of car-specific features (battery charge, tire pressures), so
   * a vehicle's PSI is read against the typical vehicle's, not against 0.25.
   */
  vehicles(): { vehicles: number; median_max_psi: number | null };
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;
const isCounts = (v: unknown): v is number[][] => Array.isArray(v) && v.every((row) => Array.isArray(row) && row.every((x) => isNum(x) && x >= 0));

function fleetInput(v: Record<string, unknown>): FleetDriftInput | undefined {
  if (
    !isStr(v.model) ||
    !isStr(v.version) ||
    (v.role !== 'active' && v.role !== 'shadow') ||
    !isStr(v.instance) ||
    !isNum(v.at) ||
    !isNum(v.period_ms) ||
    typeof v.available !== 'boolean' ||
    !isNum(v.windows)
  )
    return undefined;
  if (v.available) {
    const f = v.features;
    if (!Array.isArray(f) || !f.every(isStr) || !isCounts(v.counts) || !isCounts(v.proportions)) return undefined;
    const proportions = v.proportions;
    if (v.counts.length !== f.length || proportions.length !== f.length || v.counts.some((c, i) => c.length !== proportions[i]!.length)) return undefined;
  }
  return v as unknown as FleetDriftInput;
}

function vehicleInput(v: Record<string, unknown>): VehicleDriftInput | undefined {
  if (!isStr(v.vehicle_id) || !isVehicleId(v.vehicle_id) || !isStr(v.model) || !isStr(v.version) || !isNum(v.at) || !isNum(v.windows) || !isNum(v.significant)) return undefined;
  if (v.max_psi !== null && !isNum(v.max_psi)) return undefined;
  if (!Array.isArray(v.top) || !v.top.every((t: FeatureDrift) => t && isStr(t.feature) && isNum(t.psi))) return undefined;
  const top = (v.top as FeatureDrift[]).slice(0, 10).map((t) => ({ feature: t.feature, psi: t.psi, reading: driftReading(t.psi) }));
  const max = v.max_psi;
  return {
    schema: 'pitwall.drift.vehicle.v1',
    vehicle_id: v.vehicle_id,
    model: v.model,
    version: v.version,
    at: v.at,
    windows: v.windows,
    max_psi: max,
    reading: max === null ? null : driftReading(max),
    significant: v.significant,
    top,
  };
}

const MAX_VEHICLES = 100_000;

export function createDriftView(opts: { now: () => number; staleMs: number; top?: number }): DriftView {
  const top = opts.top ?? 10;
  /** Latest record per model, role and replica. */
  const fleetRecords = new Map<string, FleetDriftInput>();
  const vehicles = new Map<string, VehicleDriftInput>();
  let median: { at: number; value: { vehicles: number; median_max_psi: number | null } } | undefined;
  return {
    apply(value) {
      if (!value || typeof value !== 'object') return false;
      const v = value as Record<string, unknown>;
      if (v.schema === 'pitwall.drift.fleet.v1') {
        const r = fleetInput(v);
        if (!r) return false;
        const key = `${r.model}\u0000${r.role}\u0000${r.instance}`;
        const known = fleetRecords.get(key);
        if (!known || known.at <= r.at) fleetRecords.set(key, r);
        // Replicas that stopped long ago are forgotten (bounded by the replicas alive in the period).
        for (const [k, x] of fleetRecords) if (x.at < opts.now() - 10 * opts.staleMs) fleetRecords.delete(k);
        return true;
      }
      if (v.schema === 'pitwall.drift.vehicle.v1') {
        const r = vehicleInput(v);
        if (!r) return false;
        const known = vehicles.get(r.vehicle_id);
        if (known && known.at > r.at) return true;
        vehicles.delete(r.vehicle_id);
        vehicles.set(r.vehicle_id, r);
        // Bounded: the vehicles heard from least recently are forgotten first.
        if (vehicles.size > MAX_VEHICLES) vehicles.delete(vehicles.keys().next().value!);
        return true;
      }
      return false;
    },
    fleet() {
      const fresh = [...fleetRecords.values()].filter((r) => r.at >= opts.now() - opts.staleMs);
      const groups = new Map<string, FleetDriftInput[]>();
      for (const r of fresh) {
        const key = `${r.model}\u0000${r.role}`;
        groups.set(key, [...(groups.get(key) ?? []), r]);
      }
      const out: FleetDrift[] = [];
      for (const records of groups.values()) {
        // The newest version only: replicas mid-swap may still report the old one.
        const newest = records.reduce((a, b) => (b.at > a.at ? b : a));
        const same = records.filter((r) => r.version === newest.version && r.available === newest.available);
        const base = { model: newest.model, version: newest.version, role: newest.role, available: newest.available, replicas: same.length, period_ms: newest.period_ms, at: newest.at };
        const windows = same.reduce((a, r) => a + r.windows, 0);
        const sameShape = same.filter((r) => r.available && r.features!.length === newest.features?.length);
        if (!newest.available || sameShape.length === 0) {
          out.push({ ...base, ...summarizeDrift([], windows, top) });
          continue;
        }
        const drift: FeatureDrift[] = [];
        newest.features!.forEach((feature, f) => {
          const ref = newest.proportions![f]!;
          const sum = new Array<number>(ref.length).fill(0);
          for (const r of sameShape) r.counts![f]!.forEach((c, i) => (sum[i] = (sum[i] ?? 0) + c));
          const p = psi(ref, sum);
          if (p !== null) drift.push({ feature, psi: p, reading: driftReading(p) });
        });
        drift.sort((a, b) => b.psi - a.psi);
        out.push({ ...base, ...summarizeDrift(drift, windows, top) });
      }
      return out.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.role === 'active' ? -1 : 1));
    },
    vehicle: (id) => vehicles.get(id) ?? null,
    vehicles() {
      const t = opts.now();
      if (median && t - median.at < 10_000) return median.value;
      const maxes = [...vehicles.values()].map((v) => v.max_psi).filter((x): x is number => x !== null);
      maxes.sort((a, b) => a - b);
      const value = { vehicles: maxes.length, median_max_psi: maxes.length ? maxes[Math.floor(maxes.length / 2)]! : null };
      median = { at: t, value };
      return value;
    },
  };
}
