/**
 * The audit trail: one JSON record per operator action on TOPIC_CONSOLE_AUDIT (default
 * console.audit), keyed by user name, written (acks=all) before the action's response is sent.
 * Kafka keeps it across restarts and replicas; the console only writes it.
 *
 *   {"at": 1767225600000, "user": "jane", "role": "operator", "action": "acknowledge",
 *    "outcome": "ok", "client": {"address": "203.0.113.7", "user_agent": "Mozilla/5.0 ..."},
 *    "session": "<session id>", "console": "<replica id>", "incident_id": "...", "vehicle_id": "...",
 *    "command_id": "...", "note": "..."}
 *
 * action: sign-in, sign-out, acknowledge, resolve, revoke-sessions. outcome: ok, or why not
 * (bad-credentials, rate-limited, forbidden). Refused sign-ins name the user as typed (at most 64
 * characters); a rate-limited one is recorded once per address (and user) and minute.
 */
import { randomUUID } from 'node:crypto';
import type { Counters, Logger } from '@pitwall/common';
import { HttpError } from './http.js';
import { METRICS } from './metrics.js';

export const AUDIT_ACTIONS = ['sign-in', 'sign-out', 'acknowledge', 'resolve', 'revoke-sessions'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export type AuditOutcome = 'ok' | 'bad-credentials' | 'rate-limited' | 'forbidden';

export interface AuditRecord {
  at: number;
  user: string;
  role: string | null;
  action: AuditAction;
  outcome: AuditOutcome;
  client: { address: string; user_agent: string | null };
  /** The session id the action was made with, or the one a sign-in created. */
  session: string | null;
  /** Which console replica wrote it. */
  console: string;
  incident_id?: string;
  vehicle_id?: string;
  command_id?: string;
  note?: string | null;
  /** revoke-sessions: whose sessions. */
  target_user?: string;
}

/** Printable, bounded text for a field an untrusted client chose (user agent, typed user name). */
export function clip(text: string | undefined, max: number): string | null {
  if (text === undefined) return null;
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  const s = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Writes one JSON record (acks=all) and resolves once Kafka has it. */
export type WriteRecord = (topic: string, key: string, value: unknown) => Promise<void>;

export type AuditEntry = Omit<AuditRecord, 'at' | 'console'>;

export interface AuditTrail {
  /** Writes the record; the caller's response waits for it (and fails with 503 without it). */
  record(entry: AuditEntry): Promise<void>;
  /** For refusals: the response does not depend on it (the log keeps the record when Kafka does not). */
  quietly(entry: AuditEntry): Promise<void>;
}

export function createAuditTrail(deps: { topic: string; writeRecord: WriteRecord; now: () => number; log: Logger; counters: Counters }): AuditTrail {
  /** Names this replica in audit records. */
  const replica = randomUUID().slice(0, 8);
  const record = async (entry: AuditEntry): Promise<void> => {
    const r: AuditRecord = { at: deps.now(), ...entry, console: replica };
    try {
      await deps.writeRecord(deps.topic, r.user, r);
    } catch (err) {
      deps.log.error('audit record not written', { record: r, err });
      throw err instanceof HttpError ? err : new HttpError(503, 'unavailable', 'the audit trail cannot be written; try again shortly');
    }
    deps.counters.inc(METRICS.auditRecords, 1, entry.action);
  };
  return { record, quietly: (entry) => record(entry).catch(() => {}) };
}
