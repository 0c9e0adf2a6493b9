/** TypeScript shapes of the Avro records that cross service boundaries (schemas/<record>/vN.avsc). */

/** One sensor's part in an alert (alert v1, `contributors`). */
export interface Contributor {
  sensor: string;
  /** Fraction of the reconstruction error, 0..1. */
  share: number;
  component: string;
  action: string;
}

/** The `maintenance.alerts` record (schemas/alert/v1.avsc). */
export interface AlertRecord {
  alert_id: string;
  vehicle_id: string;
  window_start: number;
  window_end: number;
  score: number;
  threshold: number;
  model_name: string;
  model_version: string;
  contributors: Contributor[];
  created_at: number;
}

/** The `vehicle.scores` record (schemas/score/v1.avsc): every window the active model scored. */
export interface ScoreRecord {
  vehicle_id: string;
  window_start: number;
  window_end: number;
  score: number;
  threshold: number;
  /** score > threshold: exactly the windows that also went to maintenance.alerts. */
  anomalous: boolean;
  alert_id: string | null;
  model_name: string;
  model_version: string;
  contributors: Contributor[];
  scored_at: number;
}

export const INCIDENT_STATUSES = ['OPEN', 'ACKNOWLEDGED', 'CLEARED', 'RESOLVED'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];
/** An incident still needs someone while OPEN or ACKNOWLEDGED; CLEARED and RESOLVED are closed. */
export const isIncidentOpen = (i: Pick<IncidentRecord, 'status'>): boolean => i.status === 'OPEN' || i.status === 'ACKNOWLEDGED';
export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const INCIDENT_CHANGES = ['OPENED', 'ESCALATED', 'UPDATED', 'DELIVERED', 'ACKNOWLEDGED', 'RESOLVED', 'CLEARED', 'REOPENED'] as const;
export type IncidentChange = (typeof INCIDENT_CHANGES)[number];

/** One entry of an incident's history (incident v1, `history`). */
export interface IncidentEvent {
  at: number;
  change: IncidentChange;
  severity: Severity;
  by: string | null;
  note: string | null;
  score: number | null;
}

/** The `maintenance.incidents` record (schemas/incident/v1.avsc; compacted, key = incident_id). */
export interface IncidentRecord {
  incident_id: string;
  vehicle_id: string;
  /** SensorGroup of the dominant contributor. */
  area: string;
  component: string;
  action: string;
  status: IncidentStatus;
  severity: Severity;
  revision: number;
  last_change: IncidentChange;
  opened_at: number;
  updated_at: number;
  first_window_start: number;
  last_anomalous_window_end: number;
  /** window_end of the latest window applied; older or equal windows (re-scored duplicates) are ignored. */
  last_window_end: number;
  anomalous_windows: number;
  consecutive_normal: number;
  last_score: number;
  peak_score: number;
  threshold: number;
  model_name: string;
  model_version: string;
  contributors: Contributor[];
  delivered_at: number | null;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  resolved_by: string | null;
  closed_at: number | null;
  history: IncidentEvent[];
}

export type IncidentAction = 'ACKNOWLEDGE' | 'RESOLVE';

/** The `maintenance.incident-commands` record (schemas/incident-command/v1.avsc; key = vehicle_id). */
export interface IncidentCommandRecord {
  command_id: string;
  incident_id: string;
  vehicle_id: string;
  action: IncidentAction;
  operator: string;
  note: string | null;
  issued_at: number;
}

/** The `vehicle.receipts` record (schemas/receipt/v1.avsc; key = vehicle_id). */
export interface ReceiptRecord {
  vehicle_id: string;
  incident_id: string;
  revision: number | null;
  received_at: number;
  ingested_at: number;
}
