/**
 * The fleet and its vehicles:
 *   GET /api/fleet                       health counts and every vehicle's summary
 *   GET /api/vehicles/<id>               its summary and incidents
 *   GET /api/vehicles/<id>/telemetry?incident=<id> (or ?from=&to=, epoch ms, at most an hour)
 *       readings around the incident's start (or in the range), columnar for the charts
 *   GET /api/drift                       fleet drift per model and role (drift.ts)
 *   GET /api/vehicles/<id>/drift         the vehicle's drift over its last windows, or null
 * A malformed vehicle id is a 400 on every path under /api/vehicles/<id>.
 */
import { isVehicleId, PSI_MODERATE, PSI_SIGNIFICANT, SENSORS, VEHICLE_ID_RULE, type IncidentRecord } from '@pitwall/common';
import type { DriftView } from '../drift.js';
import type { SignedIn } from '../auth.js';
import { HttpError, json } from '../http.js';
import type { Params, Route } from '../router.js';
import type { FleetView, IncidentStore } from '../state.js';
import type { TelemetryQuery, TelemetrySeries } from '../telemetry.js';

const MAX_RANGE_MS = 3_600_000;
/** How PSI values read, for the pages' legend. */
const DRIFT_READINGS = { moderate: PSI_MODERATE, significant: PSI_SIGNIFICANT };

export interface VehicleRouteDeps {
  incidents: IncidentStore;
  fleet: FleetView;
  /** Charts around an incident: from `beforeMs` before its first window to `afterMs` after. */
  telemetry: { beforeMs: number; afterMs: number; maxScan: number; maxPoints: number };
  readTelemetry(q: TelemetryQuery): Promise<TelemetrySeries>;
  drift: Pick<DriftView, 'fleet' | 'vehicle' | 'vehicles'>;
}

export function vehicleRoutes(deps: VehicleRouteDeps): Route<SignedIn>[] {
  const { incidents, fleet, telemetry } = deps;
  const badVehicle = (): never => {
    throw new HttpError(400, 'bad_request', `a vehicle id is ${VEHICLE_ID_RULE}`);
  };
  const isBad = (p: Params): boolean => !isVehicleId(p.vehicle!);
  return [
    { method: 'GET', path: '/api/fleet', handle: ({ res }) => json(res, 200, { counts: fleet.counts(), vehicles: fleet.all() }) },
    { method: 'GET', path: '/api/vehicles/:vehicle', when: isBad, handle: badVehicle },
    { method: 'GET', path: '/api/vehicles/:vehicle/*', when: isBad, handle: badVehicle },
    { method: 'GET', path: '/api/vehicles/:vehicle', handle: ({ res }, { vehicle }) => json(res, 200, { vehicle: fleet.summary(vehicle!), incidents: incidents.forVehicle(vehicle!) }) },
    { method: 'GET', path: '/api/drift', handle: ({ res }) => json(res, 200, { models: deps.drift.fleet(), readings: DRIFT_READINGS }) },
    {
      method: 'GET',
      path: '/api/vehicles/:vehicle/drift',
      handle: ({ res }, { vehicle }) => json(res, 200, { vehicle_id: vehicle, drift: deps.drift.vehicle(vehicle!), fleet_vehicles: deps.drift.vehicles(), readings: DRIFT_READINGS }),
    },
    {
      method: 'GET',
      path: '/api/vehicles/:vehicle/telemetry',
      handle: async ({ res, url }, params) => {
        const vehicleId = params.vehicle!;
        let from: number;
        let to: number;
        const incidentId = url.searchParams.get('incident');
        let incident: IncidentRecord | undefined;
        if (incidentId) {
          incident = incidents.get(incidentId);
          if (!incident || incident.vehicle_id !== vehicleId) throw new HttpError(404, 'not_found', `no incident ${incidentId} for vehicle ${vehicleId}`);
          from = incident.first_window_start - telemetry.beforeMs;
          to = incident.first_window_start + telemetry.afterMs;
        } else {
          from = Number(url.searchParams.get('from'));
          to = Number(url.searchParams.get('to'));
          if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) throw new HttpError(400, 'bad_request', 'give ?incident=<id> or ?from=&to= (epoch ms, from < to)');
          if (to - from > MAX_RANGE_MS) throw new HttpError(400, 'bad_request', 'at most one hour per request');
        }
        const series = await deps.readTelemetry({ vehicleId, from, to });
        json(res, 200, {
          ...series,
          incident: incident ? { incident_id: incident.incident_id, first_window_start: incident.first_window_start, last_anomalous_window_end: incident.last_anomalous_window_end } : null,
          specs: SENSORS.map((x) => ({ name: x.name, unit: x.unit, group: x.group, plausible: x.plausible })),
          limits: { max_scan: telemetry.maxScan, max_points: telemetry.maxPoints },
        });
      },
    },
  ];
}
