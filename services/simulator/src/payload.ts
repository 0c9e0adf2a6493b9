/**
 * The MQTT message a car sends: topic `vehicles/{vehicleId}/telemetry`, payload a JSON object
 * `{ "ts": <epoch ms>, "<sensor>": <number>, ... }` with all 18 SENSOR_NAMES. The vehicle id lives
 * only in the topic, as it would on a real car whose broker credentials are bound to it.
 */
import { SENSOR_NAMES } from '@pitwall/common';
import type { Reading } from './fleet.js';

export type TelemetryPayload = { ts: number } & Record<string, number>;

export function toPayload(reading: Reading): TelemetryPayload {
  const payload: TelemetryPayload = { ts: reading.ts };
  for (const name of SENSOR_NAMES) {
    const v = reading.values[name];
    if (v === undefined) throw new TypeError(`reading of ${reading.vehicleId} at ${reading.ts} lacks ${name}`);
    payload[name] = v;
  }
  return payload;
}

const KEYS = SENSOR_NAMES.map((name) => `,"${name}":`);

/**
 * `JSON.stringify(toPayload(reading))`, written directly: the load generator makes one per reading,
 * and the object plus the generic stringify were a fifth of its CPU in gateway mode.
 */
export function payloadJson(reading: Reading): string {
  let json = `{"ts":${num(reading.ts)}`;
  for (let i = 0; i < KEYS.length; i++) {
    const v = reading.values[SENSOR_NAMES[i]!];
    if (v === undefined) throw new TypeError(`reading of ${reading.vehicleId} at ${reading.ts} lacks ${SENSOR_NAMES[i]}`);
    json += KEYS[i] + num(v);
  }
  return json + '}';
}

/** A number as JSON writes it (NaN and the infinities as null). */
const num = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

/** MQTT topic of a vehicle's telemetry. Ids must be a single topic level without wildcards. */
export function telemetryTopic(vehicleId: string): string {
  // eslint-disable-next-line no-control-regex -- NUL is not allowed in an MQTT topic
  if (vehicleId === '' || /[/+#\u0000]/.test(vehicleId)) throw new RangeError(`vehicle id "${vehicleId}" cannot be an MQTT topic level`);
  return `vehicles/${vehicleId}/telemetry`;
}
