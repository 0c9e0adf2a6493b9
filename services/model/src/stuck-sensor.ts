/**
 * The stuck-sensor detector: a sensor frozen at a plausible value looks normal inside one window
 * (the autoencoder scores it as healthy), but not over several consecutive windows of a sensor
 * that normally varies. Pure: window features in, per-vehicle state, verdict out. Evaluation and
 * the scoring service both run it, so it decides the same way offline and live.
 *
 * Per vehicle and sensor, each window is classified from its min and max (windows with fewer than
 * MIN_EVENTS readings are ignored, they are flat by construction):
 *   - wild:   min or max outside the sensor's plausible range (the model alerts on those); neutral:
 *             it neither shows that the sensor works nor that it is frozen
 *   - rest:   max == min at an end of the plausible range (a parked car's speed 0, throttle 0,
 *             battery at 100 %); legitimate, it ends any run
 *   - flat:   max == min inside the range: one more window of the current run
 *   - moving: anything else; it ends the run
 * A sensor "should move" in this vehicle when the vehicle's own history (moving and flat windows
 * outside alerting runs, halved whenever it exceeds HISTORY_CAP windows) holds at least
 * WARMUP_MOVING moving windows and at most MAX_FLAT_RATE flat ones. So a quantized sensor that is
 * constant most of the time in this car (a real TPMS tire pressure, a firmware build, a battery
 * percentage in whole %) is never called stuck; a noisy one that suddenly stops changing is.
 * Verdict: the window is flat, it is the MIN_FLAT_WINDOWS-th or later flat window of the run
 * (wild windows in between do not break it: a failing sensor alternating between garbage and one
 * frozen value stays stuck), and the sensor should move. Flat windows of a run that reached a verdict
 * are not learned as normal; those of any other run are, when it ends.
 *
 * A window that does not follow the previous one (a gap of at least one window) ends the run. A
 * window ending at or before the last one seen is a redelivery: it gets the verdict it got the
 * first time if that is still remembered (RECENT windows per vehicle), else none, and changes
 * nothing.
 *
 * State is bounded: a vehicle whose last window ended more than IDLE_MS (event time) before the
 * newest window seen is forgotten, and at most `maxVehicles` are kept (the least recently seen go
 * first). Losing the state (restart, rebalance, eviction) is harmless in one direction only: it
 * never causes a verdict, it delays one. The vehicle needs WARMUP_MOVING moving windows again
 * before a sensor of it can be called stuck, so a sensor that was already stuck before the loss is
 * not called stuck again until it has moved for a while (its wild episodes still alert through the
 * model).
 */
import { AGGREGATES, SENSORS, type Contributor } from '@pitwall/common';

/** Fewest readings a window needs to say anything about flatness. */
export const MIN_EVENTS = 3;
/** Consecutive flat windows (wild ones in between allowed) before a verdict: 30 s of 10 s windows. */
export const MIN_FLAT_WINDOWS = 3;
/** Moving windows a vehicle must have shown for a sensor before it can be called stuck. */
export const WARMUP_MOVING = 30;
/** Most flat windows (share of flat + moving) of a sensor that should move. */
export const MAX_FLAT_RATE = 0.2;
/** Flat + moving windows remembered per sensor before both counts are halved. */
export const HISTORY_CAP = 360;
/** Vehicles idle this long (event time, behind the newest window) are forgotten. */
export const IDLE_MS = 30 * 60_000;
/** Verdicts remembered per vehicle for redelivered windows. */
export const RECENT = 32;
export const DEFAULT_MAX_VEHICLES = 100_000;

/** The detector's view of one window: per-sensor min and max in SENSORS order. */
export interface StuckWindow {
  vehicleId: string;
  windowStart: number;
  windowEnd: number;
  events: number;
  min: ArrayLike<number>;
  max: ArrayLike<number>;
}

export interface StuckSensor {
  sensor: string;
  /** The frozen value. */
  value: number;
  /** Flat windows in the run, this one included. */
  flatWindows: number;
  /** Summed length of those windows, ms. */
  flatMs: number;
}

/** Stuck sensors of a window, in SENSORS order; empty when none. */
export type StuckVerdict = readonly StuckSensor[];

interface SensorState {
  moving: number;
  flat: number;
  runFlat: number;
  runFlatMs: number;
  /** The current run reached a verdict: its flat windows are not learned as normal. */
  runFired: boolean;
}

interface VehicleState {
  lastEnd: number;
  sensors: SensorState[];
  recent: Array<[windowEnd: number, verdict: StuckVerdict]>;
}

export interface StuckSensorDetector {
  /** Feeds one window (in window order per vehicle) and returns its verdict. */
  observe(w: StuckWindow): StuckVerdict;
  /** Vehicles currently held. */
  size(): number;
}

const NONE: StuckVerdict = Object.freeze([]);

export function createStuckSensorDetector(opts: { maxVehicles?: number; idleMs?: number } = {}): StuckSensorDetector {
  const maxVehicles = opts.maxVehicles ?? DEFAULT_MAX_VEHICLES;
  const idleMs = opts.idleMs ?? IDLE_MS;
  // Insertion order = order of last update: the front is the least recently seen vehicle.
  const vehicles = new Map<string, VehicleState>();
  let newestEnd = Number.NEGATIVE_INFINITY;

  const evict = (): void => {
    for (const [id, v] of vehicles) {
      if (vehicles.size <= maxVehicles && v.lastEnd >= newestEnd - idleMs) break;
      vehicles.delete(id);
    }
  };

  return {
    size: () => vehicles.size,
    observe(w) {
      let v = vehicles.get(w.vehicleId);
      if (v && w.windowEnd <= v.lastEnd) return v.recent.find(([end]) => end === w.windowEnd)?.[1] ?? NONE;
      if (w.events < MIN_EVENTS) return NONE;
      if (!v) v = { lastEnd: Number.NEGATIVE_INFINITY, sensors: SENSORS.map(() => ({ moving: 0, flat: 0, runFlat: 0, runFlatMs: 0, runFired: false })), recent: [] };
      const gap = w.windowStart > v.lastEnd;
      const stuck: StuckSensor[] = [];
      SENSORS.forEach((spec, i) => {
        const s = v.sensors[i]!;
        if (gap) endRun(s);
        const lo = w.min[i]!;
        const hi = w.max[i]!;
        const [pmin, pmax] = spec.plausible;
        if (lo < pmin || hi > pmax || !Number.isFinite(lo) || !Number.isFinite(hi)) return; // wild: neutral
        if (hi !== lo) {
          endRun(s);
          learn(s, 'moving');
          return;
        }
        if (lo === pmin || lo === pmax) {
          endRun(s); // at rest
          return;
        }
        const shouldMove = s.moving >= WARMUP_MOVING && s.flat <= MAX_FLAT_RATE * (s.flat + s.moving);
        s.runFlat++;
        s.runFlatMs += w.windowEnd - w.windowStart;
        if (!shouldMove || s.runFlat < MIN_FLAT_WINDOWS) return;
        s.runFired = true;
        stuck.push({ sensor: spec.name, value: lo, flatWindows: s.runFlat, flatMs: s.runFlatMs });
      });
      const verdict: StuckVerdict = stuck.length ? Object.freeze(stuck) : NONE;
      v.lastEnd = w.windowEnd;
      v.recent.push([w.windowEnd, verdict]);
      if (v.recent.length > RECENT) v.recent.shift();
      vehicles.delete(w.vehicleId);
      vehicles.set(w.vehicleId, v);
      if (w.windowEnd > newestEnd) newestEnd = w.windowEnd;
      evict();
      return verdict;
    },
  };
}

/** A run ends: its flat windows are learned as normal unless it reached a verdict. */
function endRun(s: SensorState): void {
  if (!s.runFired) for (let k = 0; k < s.runFlat; k++) learn(s, 'flat');
  s.runFlat = 0;
  s.runFlatMs = 0;
  s.runFired = false;
}

function learn(s: SensorState, what: 'moving' | 'flat'): void {
  s[what]++;
  if (s.moving + s.flat > HISTORY_CAP) {
    s.moving /= 2;
    s.flat /= 2;
  }
}

const AGG_COUNT = AGGREGATES.length;
const MIN_OFFSET = AGGREGATES.indexOf('min');
const MAX_OFFSET = AGGREGATES.indexOf('max');
const MIN_FIELDS: readonly string[] = SENSORS.map((s) => `${s.name}_min`);
const MAX_FIELDS: readonly string[] = SENSORS.map((s) => `${s.name}_max`);

/** The detector's input from a feature vector in FEATURE_NAMES order (sensor-major, mean std min max last slope). */
export function stuckWindowOf(vehicleId: string, windowStart: number, windowEnd: number, events: number, vector: ArrayLike<number>): StuckWindow {
  // Plain arrays: two typed arrays per scored window cost more to allocate and collect.
  const min = new Array<number>(SENSORS.length);
  const max = new Array<number>(SENSORS.length);
  for (let i = 0; i < SENSORS.length; i++) {
    min[i] = vector[i * AGG_COUNT + MIN_OFFSET]!;
    max[i] = vector[i * AGG_COUNT + MAX_OFFSET]!;
  }
  return { vehicleId, windowStart, windowEnd, events, min, max };
}

/** The detector's input from a decoded `vehicle.features` record (`<sensor>_min`, `<sensor>_max`). */
export function stuckWindowOfRecord(r: { vehicle_id: string; window_start: number; window_end: number; event_count: number; [f: string]: unknown }): StuckWindow {
  // Field names built once: scoring calls this for every window (it was 8 % of a chunk's time).
  const min = new Array<number>(SENSORS.length);
  const max = new Array<number>(SENSORS.length);
  for (let i = 0; i < SENSORS.length; i++) {
    const lo = r[MIN_FIELDS[i]!];
    const hi = r[MAX_FIELDS[i]!];
    min[i] = typeof lo === 'number' ? lo : Number.NaN;
    max[i] = typeof hi === 'number' ? hi : Number.NaN;
  }
  return { vehicleId: r.vehicle_id, windowStart: r.window_start, windowEnd: r.window_end, events: r.event_count, min, max };
}

/**
 * What a stuck verdict tells the operator, as alert/score contributors: one per stuck sensor, the
 * finding shared equally (share 1/n: it is the detector's finding, not a share of the
 * reconstruction error).
 */
export function stuckContributors(verdict: StuckVerdict): Contributor[] {
  return verdict.map((s) => {
    const spec = SENSORS.find((x) => x.name === s.sensor)!;
    const value = Number(s.value.toPrecision(6));
    return {
      sensor: s.sensor,
      share: 1 / verdict.length,
      component: `${s.sensor} sensor`,
      action: `Stuck: reads exactly ${value} ${spec.unit} in ${s.flatWindows} windows (${Math.round(s.flatMs / 1000)} s) though it normally varies. Check the sensor and its wiring; do not trust its readings.`,
    };
  });
}
