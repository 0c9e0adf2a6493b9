/**
 * The incident rules, pure: no I/O, the wall clock comes in as `now`. One IncidentState holds the
 * incidents of the vehicles of one input partition; the processor rebuilds it from the compacted
 * maintenance.incidents topic (load) and feeds it the partition's inputs (apply).
 *
 * Identity: one incident per (vehicle_id, area) at a time, area = SensorGroup of the window's top
 * contributor. Only the latest incident of each (vehicle, area) is kept: it is the one windows,
 * commands and receipts act on; commands/receipts naming an older, replaced one count as unknown.
 *
 * Severity (never lowered while the incident lives): from ratio = score / threshold of the window
 * and persistence n = anomalous_windows of the incident, the highest row that matches wins:
 *
 *   CRITICAL  ratio >= 4    or  n >= 12
 *   HIGH      ratio >= 2.5  or  n >= 6
 *   MEDIUM    ratio >= 1.5  or  n >= 3
 *   LOW       otherwise
 *
 * Normal windows: a window of the vehicle is "normal for area A" when it is not anomalous or its
 * area is another one (a different failing part says nothing about A). Every open incident of the
 * vehicle counts it in consecutive_normal and is rewritten as UPDATED; at clearAfterWindows it is
 * CLEARED. Writing each of these is deliberate: the state is rebuilt from the topic alone after a
 * restart or rebalance, so the counter and last_window_end must be in the record, and open
 * incidents are few and live for at most clearAfterWindows normal windows, so the extra records
 * are bounded and compaction keeps only the latest per incident anyway. Dispatch only alerts cars
 * on OPENED/ESCALATED/REOPENED, so UPDATED records do not reach drivers.
 *
 * Replays are harmless (scoring is at-least-once, and a restart may re-read an input batch whose
 * output is already on the topic): a window whose window_end is <= the incident's last_window_end
 * is ignored; the status only moves forward (OPEN -> ACKNOWLEDGED -> RESOLVED, or -> CLEARED), so
 * a repeated command finds nothing to do; delivered_at is only set once. On top, the ids of the
 * last applied commands are remembered (bounded, in memory) to report repeats as duplicates.
 */
import { createHash } from 'node:crypto';
import {
  GROUP_ACTIONS,
  isIncidentOpen,
  SENSOR_BY_NAME,
  SEVERITIES,
  type Contributor,
  type IncidentChange,
  type IncidentCommandRecord,
  type IncidentEvent,
  type IncidentRecord,
  type ReceiptRecord,
  type ScoreRecord,
  type SensorGroup,
  type Severity,
} from '@pitwall/common';

export const HISTORY_LIMIT = 50;
/** How many applied command ids a state remembers to report repeats. */
export const COMMAND_ID_MEMORY = 10_000;

export type Input = { kind: 'score'; record: ScoreRecord } | { kind: 'command'; record: IncidentCommandRecord } | { kind: 'receipt'; record: ReceiptRecord };

/** Why an input changed nothing; counted and logged by the processor. */
export type IgnoredReason =
  | 'score.stale_window'
  | 'score.no_area'
  | 'command.duplicate'
  | 'command.unknown_incident'
  | 'command.vehicle_mismatch'
  | 'command.closed'
  | 'command.not_open'
  | 'receipt.unknown_incident'
  | 'receipt.vehicle_mismatch'
  | 'receipt.already_delivered';

export interface ApplyResult {
  state: IncidentState;
  /** Whole incident records to write, in order; several revisions of one incident are possible. */
  changes: IncidentRecord[];
  /** Set when the input changed nothing for a reason worth counting. */
  ignored?: IgnoredReason;
}

export interface IncidentState {
  readonly clearAfterWindows: number;
  /** vehicle_id -> area -> latest incident of that area. */
  readonly vehicles: Map<string, Map<string, IncidentRecord>>;
  /** incident_id -> incident, for the incidents in `vehicles`. */
  readonly byId: Map<string, IncidentRecord>;
  /** Applied command ids, oldest first (a Set iterates in insertion order). */
  readonly commandIds: Set<string>;
}

export function createIncidentState(opts: { clearAfterWindows: number }): IncidentState {
  if (!Number.isInteger(opts.clearAfterWindows) || opts.clearAfterWindows < 1) throw new RangeError('clearAfterWindows must be an integer >= 1');
  return { clearAfterWindows: opts.clearAfterWindows, vehicles: new Map(), byId: new Map(), commandIds: new Set() };
}

/** Deterministic id: the same opening window always gives the same incident id (16 hex chars). */
export function incidentId(vehicleId: string, area: string, windowStart: number): string {
  return createHash('sha256').update(`${vehicleId}\u0000${area}\u0000${windowStart}`).digest('hex').slice(0, 16);
}

/** Area of a window: the SensorGroup of its largest known contributor; undefined if none is known. */
export function areaOf(contributors: readonly Contributor[]): SensorGroup | undefined {
  let best: { group: SensorGroup; share: number } | undefined;
  for (const c of contributors) {
    const spec = SENSOR_BY_NAME.get(c.sensor);
    if (spec && (!best || c.share > best.share)) best = { group: spec.group, share: c.share };
  }
  return best?.group;
}

export function ratioOf(score: number, threshold: number): number {
  if (threshold > 0) return score / threshold;
  return score > threshold ? Number.POSITIVE_INFINITY : 1;
}

/** The severity table of the module comment. */
export function severityFor(ratio: number, anomalousWindows: number): Severity {
  if (ratio >= 4 || anomalousWindows >= 12) return 'CRITICAL';
  if (ratio >= 2.5 || anomalousWindows >= 6) return 'HIGH';
  if (ratio >= 1.5 || anomalousWindows >= 3) return 'MEDIUM';
  return 'LOW';
}

export const maxSeverity = (a: Severity, b: Severity): Severity => (SEVERITIES.indexOf(a) >= SEVERITIES.indexOf(b) ? a : b);

/**
 * Puts an incident read back from maintenance.incidents into the state. Records may come in any
 * order across topic partitions: per id the highest revision wins, per (vehicle, area) the
 * incident opened by the latest window.
 */
export function load(state: IncidentState, record: IncidentRecord): void {
  const known = state.byId.get(record.incident_id);
  if (known && known.revision >= record.revision) return;
  const areas = state.vehicles.get(record.vehicle_id) ?? new Map<string, IncidentRecord>();
  const current = areas.get(record.area);
  if (current && current.incident_id !== record.incident_id && current.first_window_start > record.first_window_start) return;
  if (current && current.incident_id !== record.incident_id) state.byId.delete(current.incident_id);
  areas.set(record.area, record);
  state.vehicles.set(record.vehicle_id, areas);
  state.byId.set(record.incident_id, record);
}

export function apply(state: IncidentState, input: Input, now: number): ApplyResult {
  switch (input.kind) {
    case 'score':
      return applyScore(state, input.record, now);
    case 'command':
      return applyCommand(state, input.record, now);
    case 'receipt':
      return applyReceipt(state, input.record, now);
  }
}

function put(state: IncidentState, next: IncidentRecord): void {
  let areas = state.vehicles.get(next.vehicle_id);
  if (!areas) {
    areas = new Map();
    state.vehicles.set(next.vehicle_id, areas);
  }
  const previous = areas.get(next.area);
  if (previous && previous.incident_id !== next.incident_id) state.byId.delete(previous.incident_id);
  areas.set(next.area, next);
  state.byId.set(next.incident_id, next);
}

function withHistory(history: readonly IncidentEvent[], event: IncidentEvent): IncidentEvent[] {
  const out = [...history, event];
  // Keep the opening entry, drop the oldest after it.
  while (out.length > HISTORY_LIMIT) out.splice(1, 1);
  return out;
}

/** A change of an existing incident: revision + 1, updated_at, one history entry. */
function change(
  prev: IncidentRecord,
  fields: Partial<IncidentRecord>,
  lastChange: IncidentChange,
  now: number,
  event: { by?: string | null; note?: string | null; score?: number | null } = {},
): IncidentRecord {
  const next: IncidentRecord = { ...prev, ...fields, revision: prev.revision + 1, last_change: lastChange, updated_at: now };
  next.history = withHistory(prev.history, {
    at: now,
    change: lastChange,
    severity: next.severity,
    by: event.by ?? null,
    note: event.note ?? null,
    score: event.score ?? null,
  });
  return next;
}

function applyScore(state: IncidentState, s: ScoreRecord, now: number): ApplyResult {
  const areas = state.vehicles.get(s.vehicle_id);
  const changes: IncidentRecord[] = [];
  let area: SensorGroup | undefined;
  if (s.anomalous) {
    area = areaOf(s.contributors);
    if (!area) return { state, changes, ignored: 'score.no_area' };
  }
  let stale = false;

  // Every open incident of the vehicle in another area (or all, for a normal window): one more
  // normal window, cleared at the limit.
  for (const inc of areas?.values() ?? []) {
    if (inc.area === area || !isIncidentOpen(inc)) continue;
    if (s.window_end <= inc.last_window_end) {
      stale = true;
      continue;
    }
    const normal = inc.consecutive_normal + 1;
    const fields: Partial<IncidentRecord> = { consecutive_normal: normal, last_window_end: s.window_end };
    const next =
      normal >= state.clearAfterWindows ? change(inc, { ...fields, status: 'CLEARED', closed_at: now }, 'CLEARED', now, { score: s.score }) : change(inc, fields, 'UPDATED', now, { score: s.score });
    put(state, next);
    changes.push(next);
  }

  if (area) {
    const latest = areas?.get(area);
    if (latest && s.window_end <= latest.last_window_end) {
      stale = true;
    } else if (latest && isIncidentOpen(latest)) {
      const anomalousWindows = latest.anomalous_windows + 1;
      const severity = maxSeverity(latest.severity, severityFor(ratioOf(s.score, s.threshold), anomalousWindows));
      const next = change(
        latest,
        {
          severity,
          anomalous_windows: anomalousWindows,
          consecutive_normal: 0,
          last_window_end: s.window_end,
          last_anomalous_window_end: s.window_end,
          last_score: s.score,
          peak_score: Math.max(latest.peak_score, s.score),
          threshold: s.threshold,
          model_name: s.model_name,
          model_version: s.model_version,
          contributors: s.contributors.map((c) => ({ ...c })),
        },
        severity !== latest.severity ? 'ESCALATED' : 'UPDATED',
        now,
        { score: s.score },
      );
      put(state, next);
      changes.push(next);
    } else {
      const opened = openIncident(s, area, now);
      put(state, opened);
      changes.push(opened);
    }
  }
  return changes.length === 0 && stale ? { state, changes, ignored: 'score.stale_window' } : { state, changes };
}

function openIncident(s: ScoreRecord, area: SensorGroup, now: number): IncidentRecord {
  const { component, action } = GROUP_ACTIONS[area];
  const severity = severityFor(ratioOf(s.score, s.threshold), 1);
  return {
    incident_id: incidentId(s.vehicle_id, area, s.window_start),
    vehicle_id: s.vehicle_id,
    area,
    component,
    action,
    status: 'OPEN',
    severity,
    revision: 1,
    last_change: 'OPENED',
    opened_at: s.window_start,
    updated_at: now,
    first_window_start: s.window_start,
    last_anomalous_window_end: s.window_end,
    last_window_end: s.window_end,
    anomalous_windows: 1,
    consecutive_normal: 0,
    last_score: s.score,
    peak_score: s.score,
    threshold: s.threshold,
    model_name: s.model_name,
    model_version: s.model_version,
    contributors: s.contributors.map((c) => ({ ...c })),
    delivered_at: null,
    acknowledged_by: null,
    acknowledged_at: null,
    resolved_by: null,
    closed_at: null,
    history: [{ at: now, change: 'OPENED', severity, by: null, note: null, score: s.score }],
  };
}

function rememberCommand(state: IncidentState, id: string): void {
  state.commandIds.add(id);
  if (state.commandIds.size > COMMAND_ID_MEMORY) {
    const oldest = state.commandIds.values().next().value;
    if (oldest !== undefined) state.commandIds.delete(oldest);
  }
}

function applyCommand(state: IncidentState, c: IncidentCommandRecord, now: number): ApplyResult {
  const none = (ignored: IgnoredReason): ApplyResult => ({ state, changes: [], ignored });
  if (state.commandIds.has(c.command_id)) return none('command.duplicate');
  const inc = state.byId.get(c.incident_id);
  if (!inc) return none('command.unknown_incident');
  if (inc.vehicle_id !== c.vehicle_id) return none('command.vehicle_mismatch');
  if (!isIncidentOpen(inc)) return none('command.closed');
  let next: IncidentRecord;
  const event = { by: c.operator, note: c.note };
  if (c.action === 'ACKNOWLEDGE') {
    if (inc.status !== 'OPEN') return none('command.not_open');
    next = change(inc, { status: 'ACKNOWLEDGED', acknowledged_by: c.operator, acknowledged_at: now }, 'ACKNOWLEDGED', now, event);
  } else {
    next = change(inc, { status: 'RESOLVED', resolved_by: c.operator, closed_at: now }, 'RESOLVED', now, event);
  }
  rememberCommand(state, c.command_id);
  put(state, next);
  return { state, changes: [next] };
}

function applyReceipt(state: IncidentState, r: ReceiptRecord, now: number): ApplyResult {
  const inc = state.byId.get(r.incident_id);
  if (!inc) return { state, changes: [], ignored: 'receipt.unknown_incident' };
  if (inc.vehicle_id !== r.vehicle_id) return { state, changes: [], ignored: 'receipt.vehicle_mismatch' };
  if (inc.delivered_at !== null) return { state, changes: [], ignored: 'receipt.already_delivered' };
  // delivered_at is when the receipt reached Pitwall (ingest's clock), not the car's clock.
  const next = change(inc, { delivered_at: r.ingested_at }, 'DELIVERED', now);
  put(state, next);
  return { state, changes: [next] };
}

/** Incidents in the state, for stats. */
export function counts(state: IncidentState): { incidents: number; open: number; vehicles: number } {
  let open = 0;
  for (const i of state.byId.values()) if (isIncidentOpen(i)) open++;
  return { incidents: state.byId.size, open, vehicles: state.vehicles.size };
}
