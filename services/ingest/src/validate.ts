/**
 * Validation of one MQTT telemetry message into a telemetry record. Pure: the caller supplies the
 * clock and limits. Anything that cannot be a reading throws InvalidInputError with a stable reason
 * code (it ends up in the dead-letter headers):
 *
 *   topic.invalid        topic is not vehicles/{vehicleId}/telemetry
 *   vehicle_id.invalid   vehicle id is not 1-64 chars of [A-Za-z0-9_.-], or only dots (common/vehicle-id.ts)
 *   payload.too_large    payload over the configured byte limit
 *   payload.not_json     not UTF-8 JSON (NaN/Infinity tokens included)
 *   payload.not_object   JSON but not an object
 *   field.missing        a required field is absent or null
 *   field.type           a field is not a number
 *   field.not_finite     a number that overflowed to ±Infinity (e.g. 1e400)
 *   field.not_integer    an integer sensor or ts carries a fraction or exceeds its range
 *   ts.out_of_range      event time before 2000-01-01 or further in the future than the allowed skew
 *
 * Optional: `ignition_on` (boolean; telemetry v2). Absent or null means not reported.
 *
 * A well-formed value outside a sensor's plausible range is NOT an error: it is kept and listed in
 * `out_of_range`, because a failing sensor is itself a maintenance finding.
 *
 * The fleet profile (common/fleet-profile.ts) says which payload field holds each sensor and in what
 * unit; values are converted to Pitwall's units (integer sensors rounded after conversion) and
 * judged against the profile's plausible ranges. Field errors name the payload field.
 */
import { applyFleetProfile, checkVehicleId, InvalidInputError, PITWALL_PROFILE, type FleetProfile, type TelemetryRecord } from '@pitwall/common';

export interface ValidationLimits {
  maxPayloadBytes: number;
  maxFutureSkewMs: number;
}

const TOPIC = /^vehicles\/([^/]+)\/telemetry$/;
const MIN_TS = Date.UTC(2000, 0, 1);
const INT32 = 2 ** 31;
// One decoder for every payload (making one per message cost more than the decoding). fatal: a
// payload that is not UTF-8 is refused rather than repaired with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function vehicleIdFromTopic(topic: string): string {
  const m = TOPIC.exec(topic);
  if (!m) throw new InvalidInputError('topic.invalid', `topic "${topic.slice(0, 200)}" is not vehicles/{vehicleId}/telemetry`);
  return checkVehicleId(m[1]!);
}

/** A car's MQTT payload as a JSON object: size limit, strict UTF-8, JSON, object (dead-letter reasons payload.*). */
export function parseJsonObject(payload: Buffer, limits: Pick<ValidationLimits, 'maxPayloadBytes'>, context: { vehicleId: string }): Record<string, unknown> {
  if (payload.length > limits.maxPayloadBytes) {
    throw new InvalidInputError('payload.too_large', `payload of ${payload.length} bytes exceeds ${limits.maxPayloadBytes}`, context);
  }
  let body: unknown;
  try {
    body = JSON.parse(UTF8.decode(payload));
  } catch (err) {
    throw new InvalidInputError('payload.not_json', `payload is not UTF-8 JSON: ${(err as Error).message}`, context);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('payload.not_object', `payload must be a JSON object, got ${Array.isArray(body) ? 'array' : typeof body}`, context);
  }
  return body as Record<string, unknown>;
}

export function parseTelemetry(topic: string, payload: Buffer, receivedAt: number, limits: ValidationLimits, profile: FleetProfile = PITWALL_PROFILE): TelemetryRecord {
  const vehicleId = vehicleIdFromTopic(topic);
  const context = { vehicleId };
  const obj = parseJsonObject(payload, limits, context);
  const ts = field(obj, 'ts', true, context);
  if (ts < MIN_TS || ts > receivedAt + limits.maxFutureSkewMs) {
    throw new InvalidInputError('ts.out_of_range', `ts ${ts} (${new Date(ts).toISOString()}) is before 2000 or more than ${limits.maxFutureSkewMs} ms ahead of the ingest clock`, context);
  }
  const record: TelemetryRecord = { vehicle_id: vehicleId, ts, out_of_range: [], received_at: receivedAt };
  // The profile's conversion, shared with training (common/fleet-profile.ts); field errors name the payload field.
  const flagged = applyFleetProfile(profile, (name, integer) => field(obj, name, integer, context), record, context);
  record.out_of_range = flagged;
  const ignition = obj.ignition_on;
  if (ignition !== undefined && ignition !== null && typeof ignition !== 'boolean') {
    throw new InvalidInputError('field.type', `field "ignition_on" must be a boolean, got ${typeof ignition}`, { ...context, field: 'ignition_on' });
  }
  record.ignition_on = ignition ?? null;
  return record;
}

function field(obj: Record<string, unknown>, name: string, integer: boolean, context: { vehicleId: string }): number {
  const v = obj[name];
  if (v === undefined || v === null) throw new InvalidInputError('field.missing', `field "${name}" is missing`, { ...context, field: name });
  if (typeof v !== 'number') {
    throw new InvalidInputError('field.type', `field "${name}" must be a number, got ${typeof v}`, { ...context, field: name });
  }
  if (!Number.isFinite(v)) throw new InvalidInputError('field.not_finite', `field "${name}" is not finite`, { ...context, field: name });
  if (integer) {
    const limit = name === 'ts' ? Number.MAX_SAFE_INTEGER : INT32;
    if (!Number.isInteger(v) || Math.abs(v) >= limit) {
      throw new InvalidInputError('field.not_integer', `field "${name}" must be an integer, got ${v}`, { ...context, field: name });
    }
  }
  return v;
}
