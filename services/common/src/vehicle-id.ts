/**
 * The one rule for vehicle ids (ingest's telemetry and receipt topics, the console's vehicle
 * routes): 1-64 characters of A-Z a-z 0-9 _ . - and not only dots. "." and ".." are path segments
 * that URLs resolve away, so such a car could never be opened in the console (/vehicles/..).
 */
import { InvalidInputError, type ErrorContext } from './errors.js';

const VEHICLE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const ONLY_DOTS = /^\.+$/;

export const VEHICLE_ID_RULE = '1-64 characters of A-Z a-z 0-9 _ . -, not only dots';

export function isVehicleId(id: string): boolean {
  return VEHICLE_ID.test(id) && !ONLY_DOTS.test(id);
}

/** Returns `id`, or throws InvalidInputError `vehicle_id.invalid`. */
export function checkVehicleId(id: string, context: ErrorContext = {}): string {
  if (!isVehicleId(id)) throw new InvalidInputError('vehicle_id.invalid', `vehicle id "${id.slice(0, 80)}" must be ${VEHICLE_ID_RULE}`, context);
  return id;
}
