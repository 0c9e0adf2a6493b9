/**
 * Pure formatting for the terminal incident view (alerts-cli): a table of incidents that is
 * redrawn in place on a terminal, and one line per change when stdout is a pipe or a file.
 */
import { parseArgs } from 'node:util';
import type { IncidentRecord } from '@pitwall/common';
import { isIncidentOpen } from '@pitwall/common';

export interface CliOptions {
  follow: boolean;
  all: boolean;
  json: boolean;
  help: boolean;
}

export const USAGE = `Usage: npm run alerts -- [--follow] [--all] [--json]

Shows the incidents of maintenance.incidents (read from the beginning; nothing is committed).

  --follow   keep running and show changes live: the table is redrawn in place on a terminal,
             one line per change when stdout is not a terminal (routine UPDATED revisions — one per
             scored window while an incident is open — are left out there; --json shows them)
  --all      include closed (CLEARED, RESOLVED) incidents
  --json     one JSON object per incident (and per change with --follow) instead of a table
  --help     this text

Environment: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_INCIDENTS (as the services use them).`;

/** Throws a TypeError with a readable message on unknown or malformed options. */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      follow: { type: 'boolean', short: 'f', default: false },
      all: { type: 'boolean', short: 'a', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  return { follow: values.follow ?? false, all: values.all ?? false, json: values.json ?? false, help: values.help ?? false };
}

/** Keeps the highest revision per incident. Returns true when `incident` changed what is known. */
export function applyLatest(known: Map<string, IncidentRecord>, incident: IncidentRecord): boolean {
  const prev = known.get(incident.incident_id);
  if (prev && prev.revision >= incident.revision) return false;
  known.set(incident.incident_id, incident);
  return true;
}

/** 42s, 7m05s, 3h12m, 2d04h. Negative durations (clock skew) show as 0s. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

const SEVERITY_RANK: Readonly<Record<string, number>> = { CRITICAL: 0, HIGH: 1, MEDIUM: 2, LOW: 3 };

/** What the table shows: open incidents (or all), most severe first, then oldest first. */
export function selectIncidents(incidents: Iterable<IncidentRecord>, all: boolean): IncidentRecord[] {
  return [...incidents]
    .filter((i) => all || isIncidentOpen(i))
    .sort(
      (a, b) =>
        Number(isIncidentOpen(b)) - Number(isIncidentOpen(a)) ||
        (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
        a.opened_at - b.opened_at ||
        (a.incident_id < b.incident_id ? -1 : a.incident_id > b.incident_id ? 1 : 0),
    );
}

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  severity(sev: string, s: string): string;
}

export const PLAIN: Style = { bold: (s) => s, dim: (s) => s, severity: (_sev, s) => s };

export const ANSI: Style = {
  bold: (s) => `\x1b[1m${s}\x1b[0m`,
  dim: (s) => `\x1b[2m${s}\x1b[0m`,
  severity: (sev, s) => (sev === 'CRITICAL' ? `\x1b[1;31m${s}\x1b[0m` : sev === 'HIGH' ? `\x1b[31m${s}\x1b[0m` : sev === 'MEDIUM' ? `\x1b[33m${s}\x1b[0m` : s),
};

const COLUMNS = ['VEHICLE', 'AREA', 'SEVERITY', 'STATUS', 'AGE', 'DELIVERED', 'ACKED BY'] as const;

function cells(i: IncidentRecord, now: number): string[] {
  return [i.vehicle_id, i.area, i.severity, i.status, formatAge(now - i.opened_at), i.delivered_at === null ? '-' : `${formatAge(now - i.delivered_at)} ago`, i.acknowledged_by ?? '-'];
}

/** The table, padded to the widest cell of each column; styling never changes the widths. */
export function formatIncidentTable(incidents: readonly IncidentRecord[], now: number, style: Style = PLAIN): string {
  const rows = incidents.map((i) => cells(i, now));
  const widths = COLUMNS.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (r: readonly string[], sev?: string): string =>
    r
      .map((cell, c) => {
        const padded = c === r.length - 1 ? cell : cell.padEnd(widths[c]!);
        return c === 2 && sev !== undefined ? style.severity(sev, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  const out = [style.bold(line(COLUMNS))];
  incidents.forEach((i, k) => {
    const text = line(rows[k]!, i.severity);
    out.push(isIncidentOpen(i) ? text : style.dim(text));
  });
  if (incidents.length === 0) out.push(style.dim('(no incidents)'));
  return out.join('\n');
}

/** One line per change, for logs and pipes. */
export function formatIncidentChange(i: IncidentRecord, style: Style = PLAIN): string {
  const at = new Date(i.updated_at).toISOString();
  const parts = [
    style.dim(at),
    style.bold(i.vehicle_id),
    i.area,
    style.severity(i.severity, i.severity),
    i.status,
    `${i.last_change} r${i.revision}`,
    `delivered=${i.delivered_at === null ? 'no' : new Date(i.delivered_at).toISOString()}`,
    `acked_by=${i.acknowledged_by ?? '-'}`,
    style.dim(i.incident_id),
  ];
  return parts.join(' ');
}
