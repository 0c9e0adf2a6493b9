/**
 * The latest known state of every incident, rebuilt from the compacted maintenance.incidents topic
 * and kept current by the records dispatch consumes. Pure and in memory.
 *
 * Records can arrive more than once and out of revision order: at start the view is rebuilt from
 * the whole topic, then the consumer group resumes at its committed offset and replays what was
 * not committed. A record only replaces the known state when its revision is higher, so a replayed
 * older record never rolls an incident back.
 *
 * Closed incidents (CLEARED, RESOLVED) are kept as a small stub (vehicle, revision, status, time):
 * without it a replayed OPEN revision of an incident closed since would look open again.
 */
import { isIncidentOpen, type IncidentRecord } from '@pitwall/common';

interface Entry {
  vehicleId: string;
  revision: number;
  updatedAt: number;
  /** The whole record while the incident is open; null once it is closed. */
  open: IncidentRecord | null;
}

export type ApplyResult = 'newer' | 'same-or-older';

export interface IncidentView {
  /** Records `incident` if its revision is newer than the known one. */
  apply(incident: IncidentRecord): ApplyResult;
  /** A tombstone (null value) for this incident id: forget it. Returns its vehicle when known. */
  remove(incidentId: string): string | undefined;
  /** The highest revision seen for an incident, and whether that revision is open. */
  latest(incidentId: string): { revision: number; open: boolean } | undefined;
  /** Open incidents of a vehicle, oldest first (opened_at, then id). */
  openFor(vehicleId: string): IncidentRecord[];
  /** Latest updated_at over every known incident of a vehicle, open or closed (0 when none). */
  updatedAt(vehicleId: string): number;
  size(): { incidents: number; open: number; vehicles: number };
}

export function createIncidentView(): IncidentView {
  const byId = new Map<string, Entry>();
  const byVehicle = new Map<string, Set<string>>();

  return {
    apply(incident) {
      const known = byId.get(incident.incident_id);
      if (known && known.revision >= incident.revision) return 'same-or-older';
      if (known && known.vehicleId !== incident.vehicle_id) byVehicle.get(known.vehicleId)?.delete(incident.incident_id);
      byId.set(incident.incident_id, {
        vehicleId: incident.vehicle_id,
        revision: incident.revision,
        updatedAt: incident.updated_at,
        open: isIncidentOpen(incident) ? incident : null,
      });
      let ids = byVehicle.get(incident.vehicle_id);
      if (!ids) byVehicle.set(incident.vehicle_id, (ids = new Set()));
      ids.add(incident.incident_id);
      return 'newer';
    },
    remove(incidentId) {
      const known = byId.get(incidentId);
      if (!known) return undefined;
      byId.delete(incidentId);
      const ids = byVehicle.get(known.vehicleId);
      ids?.delete(incidentId);
      if (ids?.size === 0) byVehicle.delete(known.vehicleId);
      return known.vehicleId;
    },
    latest(incidentId) {
      const known = byId.get(incidentId);
      return known ? { revision: known.revision, open: known.open !== null } : undefined;
    },
    openFor(vehicleId) {
      const out: IncidentRecord[] = [];
      for (const id of byVehicle.get(vehicleId) ?? []) {
        const open = byId.get(id)?.open;
        if (open) out.push(open);
      }
      return out.sort((a, b) => a.opened_at - b.opened_at || (a.incident_id < b.incident_id ? -1 : a.incident_id > b.incident_id ? 1 : 0));
    },
    updatedAt(vehicleId) {
      let max = 0;
      for (const id of byVehicle.get(vehicleId) ?? []) max = Math.max(max, byId.get(id)?.updatedAt ?? 0);
      return max;
    },
    size() {
      let open = 0;
      for (const e of byId.values()) if (e.open) open++;
      return { incidents: byId.size, open, vehicles: byVehicle.size };
    },
  };
}
