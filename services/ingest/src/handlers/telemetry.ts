/**
 * Handler for `vehicles/{vehicleId}/telemetry`: a valid reading becomes an Avro record on the
 * telemetry topic keyed by vehicle id; anything else becomes a dead letter carrying the raw bytes,
 * the MQTT topic and the reason. Never throws.
 */
import type { AvroCodec, FleetProfile, TelemetryRecord } from '@pitwall/common';
import { parseTelemetry, type ValidationLimits } from '../validate.js';
import { mqttDeadLetter, type DeadLetter, type OutgoingRecord } from './dead-letter.js';

export type { OutgoingRecord } from './dead-letter.js';

export interface TelemetryHandlerDeps {
  service: string;
  codec: AvroCodec<TelemetryRecord>;
  topics: { telemetry: string; dlq: string };
  limits: ValidationLimits;
  profile?: FleetProfile;
}

/** ts: the reading's event time (for the event-time-to-acknowledgement histogram). */
export type Outcome = { kind: 'record'; record: OutgoingRecord; outOfRange: number; ts: number } | DeadLetter;

export function handleTelemetry(deps: TelemetryHandlerDeps, topic: string, payload: Buffer, receivedAt: number): Outcome {
  try {
    const reading = parseTelemetry(topic, payload, receivedAt, deps.limits, deps.profile);
    return {
      kind: 'record',
      record: { topic: deps.topics.telemetry, key: reading.vehicle_id, value: deps.codec.encode(reading) },
      outOfRange: reading.out_of_range.length,
      ts: reading.ts,
    };
  } catch (err) {
    return mqttDeadLetter(deps.service, deps.topics.dlq, topic, payload, err, receivedAt);
  }
}
