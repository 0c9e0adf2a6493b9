/**
 * The fleet and its vehicles:
 *   GET /api/fleet                       health counts and every vehicle's summary
 *   GET /api/vehicles/<id>               its summary and incidents
 *   GET /api/vehicles/<id>/telemetry?incident=<id> (or ?from=&to=, epoch ms, at most an hour)
 *       readings around the incident's start (or in the range), columnar for the charts
 * A malformed vehicle id is a 400 on every path under /api/vehicles/<id>.
 */
import { isVehicleId, SENSORS, VEHICLE_ID_RULE, type IncidentRecord } from '@pitwall/common';
import type { SignedIn } from '../auth.js';
import { HttpError, json } from '../http.js';
import type { Params, Route } from '../router.js';
import type { FleetView, IncidentStore } from '../state.js';
import type { TelemetryQuery, TelemetrySeries } from '../telemetry.js';

const MAX_RANGE_MS = 3_600_000;

export interface VehicleRouteDeps {
  incidents: IncidentStore;
  fleet: FleetView;
  /** Charts around an incident: from `beforeMs` before its first window to `afterMs` after. */
  telemetry: { beforeMs: number; afterMs: number; maxScan: number; maxPoints: number };
  readTelemetry(q: TelemetryQuery): Promise<TelemetrySeries>;
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
