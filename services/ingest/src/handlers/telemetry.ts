/**
 * Handler for `vehicles/{vehicleId}/telemetry`: a valid reading becomes an Avro record on the
 * telemetry topic keyed by vehicle id; anything else becomes a dead letter carrying the raw bytes,
 * the MQTT topic and the reason. Never throws.
 */
import { deadLetterHeaders, dispose, type AvroCodec, type TelemetryRecord } from '@pitwall/common';
import { parseTelemetry, type ValidationLimits } from '../validate.js';

export interface OutgoingRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers?: Record<string, string>;
}

export interface TelemetryHandlerDeps {
  service: string;
  codec: AvroCodec<TelemetryRecord>;
  topics: { telemetry: string; dlq: string };
  limits: ValidationLimits;
}

export type Outcome = { kind: 'record'; record: OutgoingRecord; outOfRange: number } | { kind: 'dead-letter'; record: OutgoingRecord; reason: string };

export function handleTelemetry(deps: TelemetryHandlerDeps, topic: string, payload: Buffer, receivedAt: number): Outcome {
  try {
    const reading = parseTelemetry(topic, payload, receivedAt, deps.limits);
    return {
      kind: 'record',
      record: { topic: deps.topics.telemetry, key: reading.vehicle_id, value: deps.codec.encode(reading) },
      outOfRange: reading.out_of_range.length,
    };
  } catch (err) {
    const d = dispose(err);
    // Validation errors are never retriable; anything else here is a bug in encoding: dead-letter it too.
    const reason = d.action === 'dead-letter' ? d.reason : 'unexpected';
    const message = d.action === 'dead-letter' ? d.message : String((err as Error)?.message ?? err);
    const vehicle = /^vehicles\/([^/]{1,64})\//.exec(topic)?.[1] ?? null;
    return {
      kind: 'dead-letter',
      reason,
      record: {
        topic: deps.topics.dlq,
        key: vehicle,
        value: payload,
        headers: deadLetterHeaders(deps.service, { reason, message }, { 'mqtt.topic': topic.slice(0, 512), 'received.at': String(receivedAt) }, receivedAt),
      },
    };
  }
}
