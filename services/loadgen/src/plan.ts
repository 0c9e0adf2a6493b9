/**
 * The run's plan, fixed by the coordinator before any worker starts and shared with all of them:
 * the clock (wall time <-> event time) and the injected failures (ground truth).
 *
 * Event time runs `timeScale` times faster than the wall clock and is started in the past, so that
 * it reaches the wall clock exactly when publishing stops: no reading is ever ahead of ingest's
 * clock (ingest refuses readings more than INGEST_MAX_FUTURE_SKEW_MS ahead). At time scale 1 event
 * time is the wall clock.
 */
import type { FailureMode, FailureSpec } from '@pitwall/simulator';
import type { RunOptions } from './args.js';
import { vehicleIdOf } from './partition.js';

export interface Clock {
  /** Epoch ms at which publishing starts (the ramp starts then too). */
  wallStart: number;
  /** Event time at wallStart. */
  eventStart: number;
  timeScale: number;
}

export function makeClock(wallStart: number, durationMs: number, timeScale: number): Clock {
  return { wallStart, eventStart: wallStart - durationMs * (timeScale - 1), timeScale };
}

export const eventAt = (c: Clock, wall: number): number => c.eventStart + (wall - c.wallStart) * c.timeScale;
export const wallAt = (c: Clock, event: number): number => c.wallStart + (event - c.eventStart) / c.timeScale;

export interface PlannedFailure extends FailureSpec {
  mode: FailureMode;
  rampMs: number;
  /** Wall time at which the car's event time reaches the onset. */
  onsetWall: number;
}

/**
 * `count` failing cars spread evenly over the fleet (car floor((k + 0.5) * cars / count)), modes
 * cycled, all with the same onset.
 */
export function planFailures(o: Pick<RunOptions, 'prefix' | 'cars' | 'connections' | 'failures' | 'failureModes' | 'failureAtS' | 'failureRampS'>, clock: Clock): PlannedFailure[] {
  const out: PlannedFailure[] = [];
  const onsetTs = Math.round(clock.eventStart + o.failureAtS * 1000);
  for (let k = 0; k < o.failures; k++) {
    const car = Math.floor(((k + 0.5) * o.cars) / o.failures);
    out.push({
      vehicleId: vehicleIdOf(o.prefix, car, o.cars, o.connections),
      mode: o.failureModes[k % o.failureModes.length]!,
      onsetTs,
      rampMs: Math.round(o.failureRampS * 1000),
      onsetWall: Math.round(wallAt(clock, onsetTs)),
    });
  }
  return out;
}
