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
