/**
 * Failure plans from configuration, and the ground-truth record of each injection.
 *
 * SIM_FAILURES format: comma-separated `vehicleId:mode:onsetSecondsFromStart[:sensor]`, e.g.
 *   car-0003:coolant_overheat:20,car-0007:tire_leak:20,car-0011:faulty_sensor:45:battery_percentage
 * or the word `demo`: three cars spread over the fleet, each with a different mode, at 20 s with a
 * 30 s ramp. Offsets are relative to the simulator's start so a plan can be written before the run.
 */
import { FAILURE_MODES, resolveFailure, vehicleIdsFor, type FailureMode, type FailureSpec } from './fleet.js';

export interface FailurePlan {
  vehicleId: string;
  mode: FailureMode;
  onsetOffsetMs: number;
  rampMs: number;
  sensor?: string;
}

/** What the simulator logs and records once per injected failure, at its onset. */
export interface GroundTruthEvent {
  vehicleId: string;
  mode: FailureMode;
  onsetTs: number;
  sensor?: string;
}

export const DEMO_RAMP_MS = 30_000;
const DEMO_ONSET_MS = 20_000;
const DEMO_MODES: readonly FailureMode[] = ['coolant_overheat', 'tire_leak', 'engine_vibration'];

/**
 * Parses a SIM_FAILURES value for a fleet of `cars` cars; throws RangeError (message without the
 * variable name, the caller adds it) on the first bad item, quoting it.
 */
export function parseFailurePlans(text: string, cars: number, defaultRampMs: number, idPrefix = 'car'): FailurePlan[] {
  const ids = vehicleIdsFor(cars, idPrefix);
  if (text.trim().toLowerCase() === 'demo') return demoPlans(ids);
  const idSet = new Set(ids);
  const plans: FailurePlan[] = [];
  const seen = new Set<string>();
  for (const item of text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const parts = item.split(':').map((x) => x.trim());
    if (parts.length < 3 || parts.length > 4) {
      throw new RangeError(`"${item}": expected vehicleId:mode:onsetSeconds[:sensor]`);
    }
    const [vehicleId, mode, onset, sensor] = parts as [string, string, string, string | undefined];
    if (!(FAILURE_MODES as readonly string[]).includes(mode)) {
      throw new RangeError(`"${item}": unknown failure mode "${mode}", expected one of ${FAILURE_MODES.join(', ')}`);
    }
    const seconds = onset === '' ? Number.NaN : Number(onset);
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`"${item}": onset must be seconds >= 0, got "${onset}"`);
    const plan: FailurePlan = { vehicleId, mode: mode as FailureMode, onsetOffsetMs: Math.round(seconds * 1000), rampMs: defaultRampMs };
    if (sensor !== undefined && sensor !== '') plan.sensor = sensor;
    let key: string;
    try {
      const resolved = resolveFailure(toFailureSpec(plan, 0), idSet);
      key = `${resolved.vehicleId}:${resolved.mode}:${resolved.sensor ?? ''}`;
    } catch (err) {
      throw new RangeError(`"${item}": ${(err as Error).message.replace(/^failure [^:]+:[^:]+: /, '')}`, { cause: err });
    }
    if (seen.has(key)) throw new RangeError(`"${item}": the same failure is given twice`);
    seen.add(key);
    plans.push(plan);
  }
  return plans;
}

function demoPlans(ids: readonly string[]): FailurePlan[] {
  if (ids.length < DEMO_MODES.length) throw new RangeError(`"demo" needs at least ${DEMO_MODES.length} cars, the fleet has ${ids.length}`);
  // Cars at 1/4, 2/4 and 3/4 of the fleet, so they are distinct and not all the first ones.
  return DEMO_MODES.map((mode, k) => ({
    vehicleId: ids[Math.floor(((k + 1) * ids.length) / (DEMO_MODES.length + 1))]!,
    mode,
    onsetOffsetMs: DEMO_ONSET_MS,
    rampMs: DEMO_RAMP_MS,
  }));
}

export function toFailureSpec(plan: FailurePlan, startTs: number): FailureSpec {
  const spec: FailureSpec = { vehicleId: plan.vehicleId, mode: plan.mode, onsetTs: startTs + plan.onsetOffsetMs, rampMs: plan.rampMs };
  if (plan.sensor !== undefined) spec.sensor = plan.sensor;
  return spec;
}

/** One JSON line for SIM_GROUND_TRUTH_FILE. */
export function groundTruthLine(e: GroundTruthEvent): string {
  return JSON.stringify({ vehicleId: e.vehicleId, mode: e.mode, onsetTs: e.onsetTs, sensor: e.sensor }) + '\n';
}
