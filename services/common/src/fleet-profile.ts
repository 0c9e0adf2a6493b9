/**
 * What a fleet sends, declared as data: for each of Pitwall's sensors (sensors.ts), the payload
 * field it comes in, the unit the fleet uses and, if the fleet's hardware differs, its own
 * plausible range. Ingest converts every reading to Pitwall's canonical units with it, so that
 * `out_of_range` flags and the models see one scale whatever the fleet. A profile is a JSON file
 * in `schemas/fleet-profiles/<name>.json`:
 *
 *   { "profile": "cardata-v1", "description": "...",
 *     "sensors": { "<sensor>": { "field": "<payload key>", "unit": "<unit>", "plausible": [min, max] } } }
 *
 * Every key is optional per sensor: `field` defaults to the sensor's name, `unit` to the canonical
 * unit, `plausible` (in the fleet's unit) to the canonical range converted. Units are converted only
 * where the conversion is exact (UNITS below); any other unit is refused when the profile loads.
 * The built-in profile `pitwall` is the identity.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, InvalidInputError, type ErrorContext } from './errors.js';
import { repoDir } from './paths.js';
import { SENSOR_BY_NAME, SENSORS, type SensorSpec } from './sensors.js';

/** Linear conversions into a canonical unit: canonical = value × scale + offset. */
const UNITS: Readonly<Record<string, Readonly<Record<string, { scale: number; offset: number }>>>> = Object.freeze({
  '°C': { '°C': { scale: 1, offset: 0 }, '°F': { scale: 5 / 9, offset: (-32 * 5) / 9 }, K: { scale: 1, offset: -273.15 } },
  '%': { '%': { scale: 1, offset: 0 }, fraction: { scale: 100, offset: 0 } },
  kPa: { kPa: { scale: 1, offset: 0 }, psi: { scale: 6.894757293168361, offset: 0 }, bar: { scale: 100, offset: 0 } },
  'km/h': { 'km/h': { scale: 1, offset: 0 }, mph: { scale: 1.609344, offset: 0 }, 'm/s': { scale: 3.6, offset: 0 } },
  g: { g: { scale: 1, offset: 0 }, 'm/s²': { scale: 1 / 9.80665, offset: 0 } },
});

export interface SensorMapping {
  readonly sensor: string;
  /** The key in the car's JSON payload. */
  readonly field: string;
  /** The fleet's unit. */
  readonly unit: string;
  readonly scale: number;
  readonly offset: number;
  /** Plausible range in the canonical unit. */
  readonly plausible: readonly [number, number];
}

export interface FleetProfile {
  readonly name: string;
  readonly description: string;
  /** In SENSORS order. */
  readonly sensors: readonly SensorMapping[];
  /** True when every field is named and measured as Pitwall's own (nothing to convert). */
  readonly identity: boolean;
}

const identityMapping = (spec: SensorSpec): SensorMapping => ({ sensor: spec.name, field: spec.name, unit: spec.unit, scale: 1, offset: 0, plausible: spec.plausible });

export const PITWALL_PROFILE: FleetProfile = Object.freeze({
  name: 'pitwall',
  description: "Pitwall's own units and field names (the simulator's cars)",
  sensors: Object.freeze(SENSORS.map(identityMapping)),
  identity: true,
});

/** The canonical value of a reading in the fleet's unit. */
export const toCanonical = (m: SensorMapping, value: number): number => (m.scale === 1 && m.offset === 0 ? value : value * m.scale + m.offset);

const INT32 = 2 ** 31;
const INTEGER_SENSORS: readonly boolean[] = SENSORS.map((s) => s.kind === 'int');

/**
 * One reading through a profile, the conversion ingest applies to every payload and training to
 * every CSV row: for each sensor (SENSORS order) `read` gives the value of its field (`integer`:
 * whether it must be an integer as sent, i.e. an integer sensor in its own unit; `read` checks
 * presence and type and throws its own errors), the value is converted to Pitwall's unit (integer
 * sensors rounded after conversion) and written to `out[sensor]`. Returns the sensors outside the
 * profile's plausible range. Throws InvalidInputError `field.not_integer` when a converted integer
 * sensor leaves an integer's range.
 */
export function applyFleetProfile(profile: FleetProfile, read: (field: string, integer: boolean) => number, out: Record<string, unknown>, context: ErrorContext = {}): string[] {
  const flagged: string[] = [];
  for (let i = 0; i < profile.sensors.length; i++) {
    const m = profile.sensors[i]!;
    const integer = INTEGER_SENSORS[i]!;
    const converted = m.scale !== 1 || m.offset !== 0;
    // An integer sensor is checked as sent only in its own unit; converted, it is rounded.
    const raw = read(m.field, integer && !converted);
    const v = converted ? toCanonical(m, raw) : raw;
    if (integer && converted && !(Math.abs(v) < INT32)) {
      throw new InvalidInputError('field.not_integer', `field "${m.field}" is ${raw} ${m.unit}, ${v} in Pitwall's unit: beyond an integer sensor's range`, { ...context, field: m.field });
    }
    out[m.sensor] = integer && converted ? Math.round(v) : v;
    if (v < m.plausible[0] || v > m.plausible[1]) flagged.push(m.sensor);
  }
  return flagged;
}

/** Parses and checks a profile; errors name `source` and the offending key. */
export function parseFleetProfile(json: unknown, source: string): FleetProfile {
  const fail = (what: string): never => {
    throw new Error(`fleet profile ${source}: ${what}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('must be a JSON object');
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!['profile', 'description', 'sensors'].includes(key)) fail(`unknown key "${key}"`);
  const name = o.profile;
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) fail('"profile" must be a name of lower-case letters, digits, ".", "_" or "-"');
  const sensors = o.sensors ?? {};
  if (typeof sensors !== 'object' || sensors === null || Array.isArray(sensors)) return fail('"sensors" must be an object keyed by sensor name');
  for (const key of Object.keys(sensors)) if (!SENSOR_BY_NAME.has(key)) fail(`unknown sensor "${key}" (known: ${[...SENSOR_BY_NAME.keys()].join(', ')})`);
  const fields = new Map<string, string>();
  const mappings = SENSORS.map((spec): SensorMapping => {
    const entry = (sensors as Record<string, unknown>)[spec.name] ?? {};
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`sensors.${spec.name} must be an object`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!['field', 'unit', 'plausible', 'note'].includes(key)) fail(`sensors.${spec.name}: unknown key "${key}"`);
    const field = e.field ?? spec.name;
    if (typeof field !== 'string' || field === '' || field === 'ts' || field === 'ignition_on') return fail(`sensors.${spec.name}.field must be a payload key other than ts and ignition_on`);
    const other = fields.get(field);
    if (other !== undefined) fail(`sensors.${spec.name}.field "${field}" is also the field of ${other}`);
    fields.set(field, spec.name);
    const unit = e.unit ?? spec.unit;
    if (typeof unit !== 'string') return fail(`sensors.${spec.name}.unit must be a string`);
    const conversions = UNITS[spec.unit] ?? { [spec.unit]: { scale: 1, offset: 0 } };
    const conversion = conversions[unit];
    if (!conversion) return fail(`sensors.${spec.name}.unit "${unit}" cannot be converted to ${spec.unit} (known: ${Object.keys(conversions).join(', ')})`);
    let plausible = spec.plausible;
    if (e.plausible !== undefined) {
      const p = e.plausible;
      if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => typeof x === 'number' && Number.isFinite(x)) || (p[0] as number) >= (p[1] as number)) {
        fail(`sensors.${spec.name}.plausible must be [min, max] with min < max, in ${unit}`);
      }
      const ends = (p as number[]).map((x) => x * conversion.scale + conversion.offset);
      plausible = Object.freeze([Math.min(...ends), Math.max(...ends)] as const);
    }
    return Object.freeze({ sensor: spec.name, field, unit, scale: conversion.scale, offset: conversion.offset, plausible });
  });
  const description = typeof o.description === 'string' ? o.description : '';
  const identity = mappings.every((m, i) => m.field === SENSORS[i]!.name && m.scale === 1 && m.offset === 0);
  return Object.freeze({ name: name as string, description, sensors: Object.freeze(mappings), identity });
}

export function defaultFleetProfilesDir(): string {
  return path.join(repoDir(import.meta.url, 'schemas'), 'fleet-profiles');
}

/**
 * The profile named `value` (a file `<dir>/<value>.json`, or `pitwall`), or the file at `value` if
 * it contains a slash. Fails with a ConfigError naming `variable`.
 */
export function loadFleetProfile(value: string, variable: string, dir = defaultFleetProfilesDir()): FleetProfile {
  if (value === 'pitwall') return PITWALL_PROFILE;
  const file = value.includes('/') ? value : path.join(dir, `${value}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `no fleet profile "${value}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message} reading ${file})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(variable, `fleet profile ${file} is not JSON: ${(err as Error).message}`);
  }
  try {
    return parseFleetProfile(json, file);
  } catch (err) {
    throw new ConfigError(variable, (err as Error).message);
  }
}
