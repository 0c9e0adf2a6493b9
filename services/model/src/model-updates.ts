/**
 * `model.updates` (TOPIC_MODEL_UPDATES): which model version every scoring replica serves.
 *
 * One partition, retention unlimited (the log is tiny and its history is what `rollback` reads),
 * key = model name, value = one UTF-8 JSON object per event:
 *
 *   { "schema": "pitwall.model-update.v1",
 *     "model": "pitwall-ae",                      // models/<model>/; replicas ignore other names
 *     "action": "activate" | "rollback" | "shadow" | "unshadow",
 *     "version": "2" | "latest" | null,           // null only for unshadow
 *     "issued_at": 1767225600000,                 // epoch ms
 *     "issued_by": "alice@ops-1",
 *     "reason": "optional free text" }            // optional
 *
 * - activate: serve models/<model>/<version>. "latest" hands control back to the directory watch
 *   (the highest version directory, picked up as it appears).
 * - rollback: written by `npm run model -- rollback`; carries the version it returns to, which the
 *   CLI derived from this log, so replicas treat it exactly like activate of that version.
 * - shadow / unshadow: score with a second version alongside the active one, without producing
 *   anything from it (see shadow.ts).
 *
 * Every replica reads the whole log with its own consumer (a group id unique to the instance, no
 * commits), so each sees every event and a restarted replica folds the history into the same state
 * as the others: the latest event wins.
 *
 * Precedence: an activate/rollback event for this model beats MODEL_VERSION (pinned number or
 * `latest` with the directory watch); while a numeric version is activated the directory watch does
 * not swap. Likewise a shadow/unshadow event beats MODEL_SHADOW_VERSION.
 */
export const MODEL_UPDATE_SCHEMA = 'pitwall.model-update.v1';

export const MODEL_UPDATE_ACTIONS = ['activate', 'rollback', 'shadow', 'unshadow'] as const;
export type ModelUpdateAction = (typeof MODEL_UPDATE_ACTIONS)[number];

export interface ModelUpdateEvent {
  schema: typeof MODEL_UPDATE_SCHEMA;
  model: string;
  action: ModelUpdateAction;
  /** A numeric version, "latest" (activate only), or null (unshadow). */
  version: string | null;
  issued_at: number;
  issued_by: string;
  reason?: string;
}

export class ModelUpdateFormatError extends Error {
  override name = 'ModelUpdateFormatError';
}

const NUMERIC = /^[0-9]+$/;

/** Validates a decoded event; throws ModelUpdateFormatError naming the first bad field. */
export function validateModelUpdate(raw: unknown): ModelUpdateEvent {
  const bad = (msg: string): never => {
    throw new ModelUpdateFormatError(msg);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad('a model update must be a JSON object');
  const e = raw as Record<string, unknown>;
  if (e.schema !== MODEL_UPDATE_SCHEMA) bad(`schema must be "${MODEL_UPDATE_SCHEMA}", got ${JSON.stringify(e.schema)}`);
  if (typeof e.model !== 'string' || !e.model) bad('model must be a non-empty string');
  if (!MODEL_UPDATE_ACTIONS.includes(e.action as ModelUpdateAction)) bad(`action must be one of ${MODEL_UPDATE_ACTIONS.join(', ')}, got ${JSON.stringify(e.action)}`);
  const action = e.action as ModelUpdateAction;
  if (action === 'unshadow') {
    if (e.version !== null && e.version !== undefined) bad('unshadow takes no version');
  } else if (typeof e.version !== 'string' || !(NUMERIC.test(e.version) || (action === 'activate' && e.version === 'latest'))) {
    bad(`${action} needs a numeric version${action === 'activate' ? ' or "latest"' : ''}, got ${JSON.stringify(e.version)}`);
  }
  if (typeof e.issued_at !== 'number' || !Number.isFinite(e.issued_at)) bad('issued_at must be epoch milliseconds');
  if (typeof e.issued_by !== 'string') bad('issued_by must be a string');
  if (e.reason !== undefined && typeof e.reason !== 'string') bad('reason must be a string when present');
  const event: ModelUpdateEvent = {
    schema: MODEL_UPDATE_SCHEMA,
    model: e.model as string,
    action,
    version: action === 'unshadow' ? null : (e.version as string),
    issued_at: e.issued_at as number,
    issued_by: e.issued_by as string,
  };
  if (typeof e.reason === 'string') event.reason = e.reason;
  return event;
}

/** Parses a record value (UTF-8 JSON); throws ModelUpdateFormatError. */
export function parseModelUpdate(value: Buffer | string | null): ModelUpdateEvent {
  if (value === null || value.length === 0) throw new ModelUpdateFormatError('empty record');
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString());
  } catch (err) {
    throw new ModelUpdateFormatError(`not JSON: ${(err as Error).message}`);
  }
  return validateModelUpdate(raw);
}

export function encodeModelUpdate(event: ModelUpdateEvent): Buffer {
  return Buffer.from(JSON.stringify(validateModelUpdate(event)));
}

/** What the log says for one model, after folding every event in order. */
export interface ModelUpdateState {
  /** Version to serve: a number, "latest" (directory watch), or undefined (no event: MODEL_VERSION decides). */
  active: string | undefined;
  /** Shadow version: a number, null (explicitly none), or undefined (no event: MODEL_SHADOW_VERSION decides). */
  shadow: string | null | undefined;
  /**
   * Numeric versions activated in turn, most recent last, with rollbacks popped: the undo stack
   * `rollback` walks back (activate 1, 2, 3, rollback -> 2, rollback -> 1).
   */
  history: string[];
  last: ModelUpdateEvent | undefined;
}

export const EMPTY_STATE: ModelUpdateState = Object.freeze({ active: undefined, shadow: undefined, history: [], last: undefined });

/** Applies one event (other models' events leave the state as is). Pure. */
export function foldModelUpdate(state: ModelUpdateState, event: ModelUpdateEvent, model: string): ModelUpdateState {
  if (event.model !== model) return state;
  const next: ModelUpdateState = { ...state, history: [...state.history], last: event };
  switch (event.action) {
    case 'activate':
      next.active = event.version!;
      if (event.version !== 'latest' && next.history.at(-1) !== event.version) next.history.push(event.version!);
      break;
    case 'rollback':
      // Undo the current pinned version (not when the directory watch was in charge).
      if (state.active !== undefined && next.history.at(-1) === state.active) next.history.pop();
      next.active = event.version!;
      if (next.history.at(-1) !== event.version) next.history.push(event.version!);
      break;
    case 'shadow':
      next.shadow = event.version!;
      break;
    case 'unshadow':
      next.shadow = null;
      break;
  }
  return next;
}

/** The state after `events`, in log order. */
export function resolveModelUpdates(events: readonly ModelUpdateEvent[], model: string): ModelUpdateState {
  return events.reduce((s, e) => foldModelUpdate(s, e, model), EMPTY_STATE);
}

/**
 * The version `rollback` returns to: the one activated before the current one, or undefined. When
 * the directory watch is in charge ("latest"), the last explicitly activated version.
 */
export function rollbackTarget(state: ModelUpdateState): string | undefined {
  if (state.active !== undefined && state.active === state.history.at(-1)) return state.history.at(-2);
  return state.history.at(-1);
}
