/**
 * A seeded, pure fleet generator: the same options and the same sequence of tick timestamps always
 * give the same readings. No wall clock, no Math.random.
 *
 * Each car has its own random stream (derived from seed and index) and each injected failure has
 * another (derived from seed, vehicle, mode and sensor), so adding a failure never changes the
 * healthy signals of any car.
 */
import { SENSORS, SENSOR_BY_NAME } from '@pitwall/common';
import { TIRES, createCarModel, type CarModel } from './car.js';
import { createFaultEffect, FAILURE_MODES, severityAt, type FailureMode, type FaultEffect } from './faults.js';
import { createRng, hashSeed } from './random.js';

export { FAILURE_MODES, type FailureMode };

export interface FailureSpec {
  vehicleId: string;
  mode: FailureMode;
  /** Event time (epoch ms) at which the failure starts. */
  onsetTs: number;
  /** Time from onset to full severity; default DEFAULT_RAMP_MS. */
  rampMs?: number;
  /**
   * faulty_sensor: the misbehaving sensor (default coolant_temp).
   * tire_leak: the leaking tire's sensor (default: one tire picked from the vehicle id).
   * Not allowed for other modes.
   */
  sensor?: string;
}

export interface FleetOptions {
  cars: number;
  seed: number;
  /** Vehicle ids are `${idPrefix}-0001`, `${idPrefix}-0002`, ... Default 'car'. */
  idPrefix?: string;
  failures?: readonly FailureSpec[];
}

export interface Reading {
  vehicleId: string;
  /** Event time, epoch ms. */
  ts: number;
  /** All 18 SENSOR_NAMES, in that order; int sensors rounded. */
  values: Record<string, number>;
}

export interface Fleet {
  readonly vehicleIds: readonly string[];
  /** One reading per car at event time ts (ms); call with non-decreasing ts. */
  tick(ts: number): Reading[];
  /** The injected failures with defaults filled in (rampMs, sensor), in onset order. Ground truth. */
  readonly failures?: readonly ResolvedFailure[];
}

/** A failure with its defaults filled in; `sensor` is set for tire_leak and faulty_sensor only. */
export interface ResolvedFailure extends FailureSpec {
  readonly rampMs: number;
}

export const DEFAULT_RAMP_MS = 60_000;
export const DEFAULT_FAULTY_SENSOR = 'coolant_temp';
const MAX_CARS = 99_999;

/** Decimal places each float sensor is reported with; int sensors are rounded to whole numbers. */
const DECIMALS: Readonly<Record<string, number>> = Object.freeze({
  battery_percentage: 3,
  battery_voltage: 3,
  engine_vibration_amplitude: 3,
  throttle_pos: 3,
  accelerometer_1_1_value: 4,
  accelerometer_1_2_value: 4,
  accelerometer_2_1_value: 4,
  accelerometer_2_2_value: 4,
});

export function vehicleIdsFor(cars: number, idPrefix = 'car'): string[] {
  if (!Number.isInteger(cars) || cars < 1 || cars > MAX_CARS) throw new RangeError(`cars must be an integer in 1..${MAX_CARS}, got ${cars}`);
  return Array.from({ length: cars }, (_, i) => `${idPrefix}-${String(i + 1).padStart(4, '0')}`);
}

/** Fills in defaults and checks a failure against the fleet; throws RangeError naming the problem. */
export function resolveFailure(f: FailureSpec, vehicleIds: ReadonlySet<string>): ResolvedFailure {
  const where = `failure ${f.vehicleId}:${f.mode}`;
  if (!vehicleIds.has(f.vehicleId)) throw new RangeError(`${where}: unknown vehicle "${f.vehicleId}"`);
  if (!FAILURE_MODES.includes(f.mode)) throw new RangeError(`${where}: unknown mode, expected one of ${FAILURE_MODES.join(', ')}`);
  if (!Number.isFinite(f.onsetTs)) throw new RangeError(`${where}: onsetTs must be a finite number`);
  const rampMs = f.rampMs ?? DEFAULT_RAMP_MS;
  if (!Number.isFinite(rampMs) || rampMs < 0) throw new RangeError(`${where}: rampMs must be >= 0, got ${rampMs}`);
  let sensor: string | undefined;
  if (f.mode === 'faulty_sensor') {
    sensor = f.sensor ?? DEFAULT_FAULTY_SENSOR;
    if (!SENSOR_BY_NAME.has(sensor)) throw new RangeError(`${where}: unknown sensor "${sensor}"`);
  } else if (f.mode === 'tire_leak') {
    sensor = f.sensor ?? TIRES[hashSeed(f.vehicleId) % TIRES.length]!;
    if (!(TIRES as readonly string[]).includes(sensor)) throw new RangeError(`${where}: sensor must be one of ${TIRES.join(', ')}, got "${sensor}"`);
  } else {
    if (f.sensor !== undefined) throw new RangeError(`${where}: a sensor can only be chosen for tire_leak and faulty_sensor`);
  }
  const resolved: ResolvedFailure = { vehicleId: f.vehicleId, mode: f.mode, onsetTs: f.onsetTs, rampMs };
  return Object.freeze(sensor === undefined ? resolved : { ...resolved, sensor });
}

interface ActiveFailure {
  spec: ResolvedFailure;
  effect: FaultEffect;
}

interface Car {
  id: string;
  model: CarModel;
  failures: ActiveFailure[];
}

export function createFleet(opts: FleetOptions): Fleet {
  const vehicleIds = Object.freeze(vehicleIdsFor(opts.cars, opts.idPrefix));
  const idSet = new Set(vehicleIds);
  const failures = (opts.failures ?? []).map((f) => resolveFailure(f, idSet));
  const seen = new Set<string>();
  for (const f of failures) {
    const key = `${f.vehicleId}:${f.mode}:${f.sensor ?? ''}`;
    if (seen.has(key)) throw new RangeError(`failure ${f.vehicleId}:${f.mode}: given twice`);
    seen.add(key);
  }
  const cars: Car[] = vehicleIds.map((id, i) => ({
    id,
    model: createCarModel(createRng(hashSeed('car', opts.seed, i))),
    failures: failures
      .filter((f) => f.vehicleId === id)
      .map((spec) => ({
        spec,
        effect: createFaultEffect(spec.mode, spec.sensor ?? '', createRng(hashSeed('failure', opts.seed, id, spec.mode, spec.sensor ?? '')), spec.onsetTs + spec.rampMs),
      })),
  }));
  let lastTs: number | undefined;

  return {
    vehicleIds,
    failures: Object.freeze([...failures].sort((a, b) => a.onsetTs - b.onsetTs)),
    tick(ts) {
      if (!Number.isFinite(ts)) throw new RangeError(`tick ts must be a finite number, got ${ts}`);
      if (lastTs !== undefined && ts < lastTs) throw new RangeError(`tick ts must not decrease: ${ts} < ${lastTs}`);
      const dtS = lastTs === undefined ? 0 : (ts - lastTs) / 1000;
      lastTs = ts;
      return cars.map((car) => {
        car.model.advance(dtS);
        const sample = car.model.sample();
        for (const f of car.failures) {
          const severity = severityAt(ts, f.spec.onsetTs, f.spec.rampMs);
          f.effect.apply(sample.values, { ts, dtS, severity, load: sample.load, charging: sample.charging });
        }
        return { vehicleId: car.id, ts, values: quantize(sample.values) };
      });
    },
  };
}

/** SENSORS order, int sensors rounded, floats to a fixed number of decimals (2 unless listed). */
function quantize(raw: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, f] of SCALES) out[name] = Math.round(raw[name]! * f) / f;
  return out;
}
const SCALES: readonly (readonly [string, number])[] = SENSORS.map((spec) => [spec.name, 10 ** (spec.kind === 'int' ? 0 : (DECIMALS[spec.name] ?? 2))]);
