/**
 * Handler for a maintenance.incidents record: what it means for the view and which MQTT messages
 * it becomes. Pure; the caller publishes and remembers which alerts went out.
 *
 * MQTT messages (QoS 1, contentType application/json; see the shared contracts):
 *
 * - `vehicles/{id}/alerts` when last_change is OPENED, ESCALATED or REOPENED, with MQTT 5 properties
 *   messageExpiryInterval (an alert nobody picked up within it is dropped by the broker),
 *   correlationData = the incident id, userProperties { revision, severity }. Payload:
 *     { schema: "pitwall.alert.v2", incident_id, revision, vehicle_id, status, severity, area,
 *       component, action, score (the latest window's), threshold, model: { name, version },
 *       contributors: [{ sensor, share, component, action }], opened_at, updated_at }
 *   Delivery is at-least-once: cars deduplicate on incident_id + revision. Dispatch itself skips
 *   an alert for a revision it already sent in this process, and one for an older revision of an
 *   incident that has been closed since (a replay after a restart must not alarm a car about
 *   something that is over).
 *
 * - `vehicles/{id}/maintenance`, RETAINED, on every change of one of the vehicle's incidents: the
 *   vehicle's complete current state, so a car that connects later gets it from the broker.
 *     { schema: "pitwall.maintenance.v1", vehicle_id, status: "ok" | "attention",
 *       open_incidents: [{ incident_id, area, component, action, severity, status, opened_at, revision }],
 *       updated_at }
 *   Open means OPEN or ACKNOWLEDGED; updated_at is the latest change of any of its incidents.
 *
 * - the operators' fleet topic, every change: { schema: "pitwall.incident.v1", ...IncidentRecord }.
 */
import type { IClientPublishOptions } from 'mqtt';
import type { IncidentRecord } from '@pitwall/common';
import type { IncidentView } from '../view.js';

export const ALERTING_CHANGES: ReadonlySet<string> = new Set(['OPENED', 'ESCALATED', 'REOPENED']);

export interface Publication {
  topic: string;
  payload: string;
  options: IClientPublishOptions & { qos: 1 };
}

export interface IncidentHandlerConfig {
  fleetTopic: string;
  alertExpirySeconds: number;
}

export type AlertDecision = 'send' | 'not-an-alerting-change' | 'already-sent' | 'closed-since';

export interface IncidentOutcome {
  /** Alert (if any) then the fleet message, in publishing order. */
  publications: Publication[];
  alert: AlertDecision;
  /** Set when alert is 'send': remember it once the broker acknowledged the alert. */
  alertKey?: string;
  /** The vehicle whose retained maintenance state must be published again. */
  maintenanceFor: string;
}

const JSON_TYPE = 'application/json';

export function alertKey(incidentId: string, revision: number): string {
  return `${incidentId}#${revision}`;
}

export function alertTopic(vehicleId: string): string {
  return `vehicles/${vehicleId}/alerts`;
}

export function maintenanceTopic(vehicleId: string): string {
  return `vehicles/${vehicleId}/maintenance`;
}

export function alertPayload(i: IncidentRecord): Record<string, unknown> {
  return {
    schema: 'pitwall.alert.v2',
    incident_id: i.incident_id,
    revision: i.revision,
    vehicle_id: i.vehicle_id,
    status: i.status,
    severity: i.severity,
    area: i.area,
    component: i.component,
    action: i.action,
    score: i.last_score,
    threshold: i.threshold,
    model: { name: i.model_name, version: i.model_version },
    contributors: i.contributors.map((c) => ({ sensor: c.sensor, share: c.share, component: c.component, action: c.action })),
    opened_at: i.opened_at,
    updated_at: i.updated_at,
  };
}

export function alertPublication(i: IncidentRecord, alertExpirySeconds: number): Publication {
  return {
    topic: alertTopic(i.vehicle_id),
    payload: JSON.stringify(alertPayload(i)),
    options: {
      qos: 1,
      properties: {
        contentType: JSON_TYPE,
        messageExpiryInterval: alertExpirySeconds,
        correlationData: Buffer.from(i.incident_id),
        userProperties: { revision: String(i.revision), severity: i.severity },
      },
    },
  };
}

export function fleetPublication(i: IncidentRecord, fleetTopic: string): Publication {
  return {
    topic: fleetTopic,
    payload: JSON.stringify({ schema: 'pitwall.incident.v1', ...i }),
    options: { qos: 1, properties: { contentType: JSON_TYPE } },
  };
}

export function maintenancePayload(vehicleId: string, view: Pick<IncidentView, 'openFor' | 'updatedAt'>): Record<string, unknown> {
  const open = view.openFor(vehicleId);
  return {
    schema: 'pitwall.maintenance.v1',
    vehicle_id: vehicleId,
    status: open.length > 0 ? 'attention' : 'ok',
    open_incidents: open.map((i) => ({
      incident_id: i.incident_id,
      area: i.area,
      component: i.component,
      action: i.action,
      severity: i.severity,
      status: i.status,
      opened_at: i.opened_at,
      revision: i.revision,
    })),
    updated_at: view.updatedAt(vehicleId),
  };
}

export function maintenancePublication(vehicleId: string, view: Pick<IncidentView, 'openFor' | 'updatedAt'>): Publication {
  return {
    topic: maintenanceTopic(vehicleId),
    payload: JSON.stringify(maintenancePayload(vehicleId, view)),
    options: { qos: 1, retain: true, properties: { contentType: JSON_TYPE } },
  };
}

/**
 * Applies one incident record to the view and says what to publish. `alreadySent` answers whether
 * an alert key went out before (in this process).
 */
export function handleIncident(incident: IncidentRecord, view: IncidentView, alreadySent: (key: string) => boolean, config: IncidentHandlerConfig): IncidentOutcome {
  view.apply(incident);
  const publications: Publication[] = [];
  const key = alertKey(incident.incident_id, incident.revision);
  const latest = view.latest(incident.incident_id);
  let alert: AlertDecision;
  if (!ALERTING_CHANGES.has(incident.last_change)) alert = 'not-an-alerting-change';
  else if (alreadySent(key)) alert = 'already-sent';
  else if (latest && latest.revision > incident.revision && !latest.open) alert = 'closed-since';
  else alert = 'send';
  if (alert === 'send') publications.push(alertPublication(incident, config.alertExpirySeconds));
  publications.push(fleetPublication(incident, config.fleetTopic));
  return { publications, alert, ...(alert === 'send' ? { alertKey: key } : {}), maintenanceFor: incident.vehicle_id };
}

/** A tombstone: the incident is forgotten; its vehicle's state is published again if it was known. */
export function handleTombstone(incidentId: string, view: IncidentView): { maintenanceFor: string | undefined } {
  return { maintenanceFor: view.remove(incidentId) };
}
