/**
 * The dead letter of an MQTT payload no handler could turn into a record: the raw bytes, keyed by
 * the vehicle named in the topic when there is one, with the reason, the MQTT topic and the
 * arrival time in headers. Validation errors are never retriable; anything else reaching a handler
 * is a bug in encoding and is dead-lettered as `unexpected` rather than lost.
 */
import { deadLetterHeaders, dispose } from '@pitwall/common';

export interface OutgoingRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers?: Record<string, string>;
}

export interface DeadLetter {
  kind: 'dead-letter';
  record: OutgoingRecord;
  reason: string;
}

export function mqttDeadLetter(service: string, dlqTopic: string, mqttTopic: string, payload: Buffer, err: unknown, receivedAt: number): DeadLetter {
  const d = dispose(err);
  const reason = d.action === 'dead-letter' ? d.reason : 'unexpected';
  const message = d.action === 'dead-letter' ? d.message : String((err as Error)?.message ?? err);
  const vehicle = /^vehicles\/([^/]{1,64})\//.exec(mqttTopic)?.[1] ?? null;
  return {
    kind: 'dead-letter',
    reason,
    record: {
      topic: dlqTopic,
      key: vehicle,
      value: payload,
      headers: deadLetterHeaders(service, { reason, message }, { 'mqtt.topic': mqttTopic.slice(0, 512), 'received.at': String(receivedAt) }, receivedAt),
    },
  };
}
