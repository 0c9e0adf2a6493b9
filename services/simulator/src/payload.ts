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

/** MQTT topic of a vehicle's telemetry. Ids must be a single topic level without wildcards. */
export function telemetryTopic(vehicleId: string): string {
  // eslint-disable-next-line no-control-regex -- NUL is not allowed in an MQTT topic
  if (vehicleId === '' || /[/+#\u0000]/.test(vehicleId)) throw new RangeError(`vehicle id "${vehicleId}" cannot be an MQTT topic level`);
  return `vehicles/${vehicleId}/telemetry`;
}
