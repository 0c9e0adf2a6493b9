/**
 * Test helpers shared by the workspaces' tests (@pitwall/common/testing; never imported by a service's src).
 * Fixtures: records as the services write them, to override what a test is about.
 */
import type { IncidentRecord } from './records.js';

/** An incident as the incidents service writes it; override what a test is about. */
export function incident(over: Partial<IncidentRecord> = {}): IncidentRecord {
  return {
    incident_id: 'inc-1',
    vehicle_id: 'car-0007',
    area: 'cooling',
    component: 'cooling system',
    action: 'Check coolant level, thermostat and radiator fan.',
    status: 'OPEN',
    severity: 'HIGH',
    revision: 1,
    last_change: 'OPENED',
    opened_at: 1_700_000_000_000,
    updated_at: 1_700_000_060_000,
    first_window_start: 1_700_000_000_000,
    last_anomalous_window_end: 1_700_000_060_000,
    last_window_end: 1_700_000_060_000,
    anomalous_windows: 1,
    consecutive_normal: 0,
    last_score: 12.5,
    peak_score: 12.5,
    threshold: 3.25,
    model_name: 'pitwall-ae',
    model_version: '1',
    contributors: [
      { sensor: 'coolant_temp', share: 0.72, component: 'cooling system', action: 'Check coolant level, thermostat and radiator fan.' },
      { sensor: 'speed', share: 0.1, component: 'drivetrain', action: 'Inspect drivetrain.' },
    ],
    delivered_at: null,
    acknowledged_by: null,
    acknowledged_at: null,
    resolved_by: null,
    closed_at: null,
    history: [{ at: 1_700_000_060_000, change: 'OPENED', severity: 'HIGH', by: null, note: null, score: 12.5 }],
    ...over,
  };
}

/**
 * Resolves once `check` returns true, polling every `everyMs`; rejects naming `what` after
 * `timeoutMs`. For unit tests that wait on timers: a fixed sleep passes or fails with the machine's
 * load (unit tests run in parallel), a gate only waits as long as needed.
 */
export async function eventually(what: string, check: () => boolean, timeoutMs = 5_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
