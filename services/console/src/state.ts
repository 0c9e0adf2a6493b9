/**
 * The console's in-memory views, pure and driven by the records it reads:
 * - incidents: latest revision of every incident on the compacted maintenance.incidents topic
 *   (a record replaces the known one only when its revision is higher: a replay never rolls back);
 * - vehicles: latest scored window per vehicle from vehicle.scores, combined with the vehicle's
 *   open incidents into a health: critical > attention > ok, and unknown without any score.
 */
import { isIncidentOpen, type IncidentRecord, type ScoreRecord, type Severity } from '@pitwall/common';

/** Severities that make a vehicle "critical" while an incident of theirs is open. */
export const CRITICAL_SEVERITIES: ReadonlySet<Severity> = new Set(['HIGH', 'CRITICAL']);
const SEVERITY_RANK: Record<Severity, number> = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

export type Health = 'critical' | 'attention' | 'ok' | 'unknown';

export interface VehicleSummary {
  vehicle_id: string;
  health: Health;
  open_incidents: number;
  /** Highest severity among open incidents, null when none. */
  top_severity: Severity | null;
  last_score: { score: number; threshold: number; anomalous: boolean; window_end: number; model_version: string } | null;
}

export interface IncidentStore {
  /** True when the record is newer than what was known (and so worth broadcasting). */
  apply(incident: IncidentRecord): boolean;
  /** A tombstone: returns the forgotten incident. */
  remove(incidentId: string): IncidentRecord | undefined;
  get(incidentId: string): IncidentRecord | undefined;
  forVehicle(vehicleId: string): IncidentRecord[];
  /** Open incidents plus those closed within `closedWithinMs` of `now`, newest change first, at most `limit`. */
  list(now: number, closedWithinMs: number, limit: number): IncidentRecord[];
  size(): number;
}

export function createIncidentStore(): IncidentStore {
  const byId = new Map<string, IncidentRecord>();
  const byVehicle = new Map<string, Set<string>>();
  return {
    apply(incident) {
      const known = byId.get(incident.incident_id);
      if (known && known.revision >= incident.revision) return false;
      if (known && known.vehicle_id !== incident.vehicle_id) byVehicle.get(known.vehicle_id)?.delete(incident.incident_id);
      byId.set(incident.incident_id, incident);
      let ids = byVehicle.get(incident.vehicle_id);
      if (!ids) byVehicle.set(incident.vehicle_id, (ids = new Set()));
      ids.add(incident.incident_id);
      return true;
    },
    remove(incidentId) {
      const known = byId.get(incidentId);
      if (!known) return undefined;
      byId.delete(incidentId);
      byVehicle.get(known.vehicle_id)?.delete(incidentId);
      return known;
    },
    get: (id) => byId.get(id),
    forVehicle(vehicleId) {
      return [...(byVehicle.get(vehicleId) ?? [])].map((id) => byId.get(id)!).sort((a, b) => b.opened_at - a.opened_at);
    },
    list(now, closedWithinMs, limit) {
      const out: IncidentRecord[] = [];
      for (const i of byId.values()) {
        if (isIncidentOpen(i) || (i.closed_at ?? i.updated_at) >= now - closedWithinMs) out.push(i);
      }
      out.sort((a, b) => Number(isIncidentOpen(b)) - Number(isIncidentOpen(a)) || b.updated_at - a.updated_at);
      return out.slice(0, limit);
    },
    size: () => byId.size,
  };
}

export interface FleetView {
  /** Records a score if it is the vehicle's latest window; returns whether it changed anything. */
  applyScore(score: ScoreRecord): boolean;
  summary(vehicleId: string): VehicleSummary;
  all(): VehicleSummary[];
  counts(): Record<Health, number>;
}

export function vehicleHealth(scored: boolean, open: readonly Pick<IncidentRecord, 'severity'>[]): Health {
  if (open.some((i) => CRITICAL_SEVERITIES.has(i.severity))) return 'critical';
  if (open.length > 0) return 'attention';
  return scored ? 'ok' : 'unknown';
}

export function createFleetView(incidents: IncidentStore): FleetView {
  const latest = new Map<string, ScoreRecord>();
  const summary = (vehicleId: string): VehicleSummary => {
    const open = incidents.forVehicle(vehicleId).filter(isIncidentOpen);
    const s = latest.get(vehicleId);
    let top: Severity | null = null;
    for (const i of open) if (top === null || SEVERITY_RANK[i.severity] > SEVERITY_RANK[top]) top = i.severity;
    return {
      vehicle_id: vehicleId,
      health: vehicleHealth(s !== undefined, open),
      open_incidents: open.length,
      top_severity: top,
      last_score: s ? { score: s.score, threshold: s.threshold, anomalous: s.anomalous, window_end: s.window_end, model_version: s.model_version } : null,
    };
  };
  const vehicles = (): Set<string> => {
    const ids = new Set(latest.keys());
    for (const i of incidents.list(0, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY)) ids.add(i.vehicle_id);
    return ids;
  };
  return {
    applyScore(score) {
      const known = latest.get(score.vehicle_id);
      if (known && known.window_end > score.window_end) return false;
      latest.set(score.vehicle_id, score);
      return true;
    },
    summary,
    all: () => [...vehicles()].sort().map(summary),
    counts() {
      const out: Record<Health, number> = { critical: 0, attention: 0, ok: 0, unknown: 0 };
      for (const v of vehicles()) out[summary(v).health]++;
      return out;
    },
  };
}
