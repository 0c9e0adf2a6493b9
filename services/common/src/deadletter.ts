/**
 * The one place that decides between retry and dead-letter, and records why. A dead-lettered
 * message keeps its raw bytes as the value; headers say where it came from and why it was refused,
 * in machine-readable form:
 *   pitwall.dlq.reason     stable reason code (e.g. payload.not_json, field.missing)
 *   pitwall.dlq.message    human-readable detail
 *   pitwall.dlq.service    the service that refused it
 *   pitwall.dlq.time       epoch ms when refused
 *   pitwall.source.*       origin (mqtt.topic, or kafka topic/partition/offset)
 */
import { isRetriable, PitwallError } from './errors.js';

export const DLQ_HEADER = Object.freeze({
  reason: 'pitwall.dlq.reason',
  message: 'pitwall.dlq.message',
  service: 'pitwall.dlq.service',
  time: 'pitwall.dlq.time',
});

export type Disposition = { action: 'retry' } | { action: 'dead-letter'; reason: string; message: string };

export function dispose(err: unknown): Disposition {
  if (isRetriable(err)) return { action: 'retry' };
  if (err instanceof PitwallError) return { action: 'dead-letter', reason: err.reason, message: err.message };
  return { action: 'dead-letter', reason: 'unexpected', message: err instanceof Error ? err.message : String(err) };
}

/** A Kafka record that could not be decoded, dead-lettered as it came with where it came from. */
export function undecodableRecord(
  service: string,
  err: unknown,
  message: { key: Buffer | null; value: Buffer | null; offset: string },
  source: { topic: string; partition: number },
): { key: Buffer | null; value: Buffer | null; headers: Record<string, string> } {
  return {
    key: message.key,
    value: message.value,
    headers: deadLetterHeaders(
      service,
      { reason: (err as { reason?: string }).reason ?? 'avro.decode', message: (err as Error)?.message ?? String(err) },
      { topic: source.topic, partition: String(source.partition), offset: message.offset },
    ),
  };
}

export function deadLetterHeaders(service: string, d: { reason: string; message: string }, source: Record<string, string>, now: number = Date.now()): Record<string, string> {
  const headers: Record<string, string> = {
    [DLQ_HEADER.reason]: d.reason,
    [DLQ_HEADER.message]: d.message.slice(0, 1000),
    [DLQ_HEADER.service]: service,
    [DLQ_HEADER.time]: String(now),
  };
  for (const [k, v] of Object.entries(source)) headers[`pitwall.source.${k}`] = v;
  return headers;
}
