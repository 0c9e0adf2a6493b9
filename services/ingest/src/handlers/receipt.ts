/**
 * Handler for `vehicles/{vehicleId}/alerts/receipt`: a car confirms it received an alert. A valid
 * receipt becomes an Avro ReceiptRecord (schemas/receipt/v1.avsc) on the receipts topic keyed by
 * vehicle id; anything else becomes a dead letter with the raw bytes, MQTT topic and reason, like
 * telemetry. Never throws.
 *
 * Payload (JSON object; unknown fields are ignored):
 *   incident_id   non-empty string (at most 256 characters), required
 *   revision      non-negative integer, optional (absent or null: the car did not say)
 *   received_at   epoch ms on the car's clock, optional (absent or null: the ingest clock)
 * The vehicle id comes from the topic, never the payload: a car can only confirm for itself.
 *
 * Reason codes: topic.invalid, vehicle_id.invalid, payload.too_large, payload.not_json,
 * payload.not_object, field.missing, field.type, field.invalid (empty or over-long incident_id),
 * field.not_integer (revision or received_at with a fraction, negative, or unsafe),
 * ts.out_of_range (received_at before 2000 or further ahead than the allowed clock skew).
 */
import { checkVehicleId, InvalidInputError, type AvroCodec, type ReceiptRecord } from '@pitwall/common';
import { parseJsonObject, type ValidationLimits } from '../validate.js';
import { mqttDeadLetter, type DeadLetter, type OutgoingRecord } from './dead-letter.js';

export interface ReceiptHandlerDeps {
  service: string;
  codec: AvroCodec<ReceiptRecord>;
  topics: { receipts: string; dlq: string };
  limits: ValidationLimits;
}

export type ReceiptOutcome = { kind: 'record'; record: OutgoingRecord; receipt: ReceiptRecord } | DeadLetter;

const TOPIC = /^vehicles\/([^/]+)\/alerts\/receipt$/;
const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_INCIDENT_ID = 256;

export function isReceiptTopic(topic: string): boolean {
  return TOPIC.test(topic);
}

export function parseReceipt(topic: string, payload: Buffer, ingestedAt: number, limits: ValidationLimits): ReceiptRecord {
  const m = TOPIC.exec(topic);
  if (!m) throw new InvalidInputError('topic.invalid', `topic "${topic.slice(0, 200)}" is not vehicles/{vehicleId}/alerts/receipt`);
  const vehicleId = checkVehicleId(m[1]!);
  const context = { vehicleId };
  const obj = parseJsonObject(payload, limits, context);

  const incidentId = obj.incident_id;
  if (incidentId === undefined || incidentId === null) throw new InvalidInputError('field.missing', 'field "incident_id" is missing', { ...context, field: 'incident_id' });
  if (typeof incidentId !== 'string') {
    throw new InvalidInputError('field.type', `field "incident_id" must be a string, got ${typeof incidentId}`, { ...context, field: 'incident_id' });
  }
  if (incidentId.trim() === '' || incidentId.length > MAX_INCIDENT_ID) {
    throw new InvalidInputError('field.invalid', `field "incident_id" must be 1-${MAX_INCIDENT_ID} characters, not blank`, { ...context, field: 'incident_id' });
  }

  const revision = optionalInteger(obj, 'revision', context);
  const receivedAt = optionalInteger(obj, 'received_at', context);
  if (receivedAt !== null && (receivedAt < MIN_TS || receivedAt > ingestedAt + limits.maxFutureSkewMs)) {
    throw new InvalidInputError('ts.out_of_range', `received_at ${receivedAt} is before 2000 or more than ${limits.maxFutureSkewMs} ms ahead of the ingest clock`, {
      ...context,
      field: 'received_at',
    });
  }
  return { vehicle_id: vehicleId, incident_id: incidentId, revision, received_at: receivedAt ?? ingestedAt, ingested_at: ingestedAt };
}

function optionalInteger(obj: Record<string, unknown>, name: string, context: { vehicleId: string }): number | null {
  const v = obj[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number') throw new InvalidInputError('field.type', `field "${name}" must be a number, got ${typeof v}`, { ...context, field: name });
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new InvalidInputError('field.not_integer', `field "${name}" must be a non-negative integer, got ${v}`, { ...context, field: name });
  }
  return v;
}

export function handleReceipt(deps: ReceiptHandlerDeps, topic: string, payload: Buffer, ingestedAt: number): ReceiptOutcome {
  try {
    const receipt = parseReceipt(topic, payload, ingestedAt, deps.limits);
    return { kind: 'record', receipt, record: { topic: deps.topics.receipts, key: receipt.vehicle_id, value: deps.codec.encode(receipt) } };
  } catch (err) {
    return mqttDeadLetter(deps.service, deps.topics.dlq, topic, payload, err, ingestedAt);
  }
}
