/**
 * Failure effects, applied on top of a car's healthy sample. Each effect has its own random stream,
 * so a failing car's healthy signals stay identical to the same car without the failure (tests
 * compare the two). Severity ramps linearly from 0 at onset to 1 after rampMs.
 *
 * At full severity, in a 10 s window:
 *   tire_leak            one tire falls linearly to 110 kPa (from ~235), then loses another 0.03 kPa/s
 *   coolant_overheat     coolant +38..44 °C over healthy (~130 °C and above)
 *   engine_vibration     vibration amplitude 4.5x healthy plus rough-running noise
 *   battery_degradation  ~11 V sagging further with current; charge falls 0.06 %/s; current spikes
 *   faulty_sensor        alternating episodes: "wild" for 5-15 s (every reading far outside the plausible
 *                        range, e.g. coolant 1976 °C or battery -37 %) and "stuck" for 20-60 s (frozen
 *                        at the last good value)
 * Below full severity, a faulty sensor misbehaves on a fraction `severity` of readings.
 */
import { SENSOR_BY_NAME } from '@pitwall/common';
import type { Rng } from './random.js';

/** The failures the simulator can inject (fleet.ts plans them, this module shapes their signals). */
export type FailureMode = 'tire_leak' | 'coolant_overheat' | 'engine_vibration' | 'battery_degradation' | 'faulty_sensor';

export const FAILURE_MODES: readonly FailureMode[] = Object.freeze(['tire_leak', 'coolant_overheat', 'engine_vibration', 'battery_degradation', 'faulty_sensor']);

export interface FaultContext {
  ts: number;
  /** Seconds since the previous tick of this car (0 on the first). */
  dtS: number;
  severity: number;
  load: number;
  charging: number;
}

export interface FaultEffect {
  /** Mutates `values` (physical, unrounded) in place. */
  apply(values: Record<string, number>, ctx: FaultContext): void;
}

/** Linear ramp: 0 before onset, 1 from onset + rampMs on. */
export function severityAt(ts: number, onsetTs: number, rampMs: number): number {
  if (ts < onsetTs) return 0;
  if (rampMs <= 0) return 1;
  return Math.min(1, (ts - onsetTs) / rampMs);
}

export const LEAK_FLOOR_KPA = 110;
const LEAK_AFTER_KPA_PER_S = 0.03;

export function createFaultEffect(mode: FailureMode, sensor: string, rng: Rng, fullAtTs: number): FaultEffect {
  switch (mode) {
    case 'tire_leak':
      return {
        apply(v, c) {
          const after = Math.max(0, (c.ts - fullAtTs) / 1000) * LEAK_AFTER_KPA_PER_S;
          const leaking = LEAK_FLOOR_KPA + rng.normal(0, 0.7) - after;
          v[sensor] = Math.max(0, (1 - c.severity) * v[sensor]! + c.severity * leaking);
        },
      };
    case 'coolant_overheat':
      return {
        apply(v, c) {
          v.coolant_temp = v.coolant_temp! + c.severity * (38 + 6 * c.load + rng.normal(0, 0.6));
        },
      };
    case 'engine_vibration':
      return {
        apply(v, c) {
          const healthy = v.engine_vibration_amplitude!;
          const rough = Math.abs(rng.normal(0, 1.2 + 0.25 * healthy));
          v.engine_vibration_amplitude = healthy * (1 + 3.5 * c.severity) + c.severity * rough;
          for (const name of ['accelerometer_1_1_value', 'accelerometer_1_2_value']) {
            v[name] = v[name]! + c.severity * rng.normal(0, 0.05);
          }
        },
      };
    case 'battery_degradation':
      return batteryDegradation(rng);
    case 'faulty_sensor':
      return faultySensor(sensor, rng);
  }
}

function batteryDegradation(rng: Rng): FaultEffect {
  let lostPct = 0;
  return {
    apply(v, c) {
      lostPct += c.severity * 0.06 * c.dtS;
      v.battery_percentage = Math.max(0, v.battery_percentage! - lostPct);
      const spike = rng.next() < 0.35 * c.severity ? rng.uniform(80, 220) : 0;
      v.current_draw = v.current_draw! + c.severity * 25 + spike;
      const sagged = 11.3 - 0.012 * (v.current_draw - 20) - 0.3 * (1 - c.charging) + rng.normal(0, 0.08);
      v.battery_voltage = (1 - c.severity) * v.battery_voltage! + c.severity * sagged;
    },
  };
}

function faultySensor(sensor: string, rng: Rng): FaultEffect {
  const [min, max] = SENSOR_BY_NAME.get(sensor)!.plausible;
  const span = max - min;
  let episode: 'wild' | 'stuck' = 'stuck';
  let episodeEndTs = Number.NEGATIVE_INFINITY;
  let stuckAt = 0;
  let lastGood: number | undefined;
  const wild = (): number => (rng.next() < 0.6 ? max + span * rng.uniform(1, 12) : min - span * rng.uniform(0.2, 1));
  return {
    apply(v, c) {
      if (c.severity <= 0) {
        lastGood = v[sensor];
        return;
      }
      if (c.ts >= episodeEndTs) {
        episode = episode === 'wild' ? 'stuck' : 'wild';
        // Stuck spells of 20 s or more always cover at least one whole aligned 10 s window.
        episodeEndTs = c.ts + (episode === 'wild' ? rng.uniform(5_000, 15_000) : rng.uniform(20_000, 60_000));
        stuckAt = lastGood ?? v[sensor]!;
      }
      if (rng.next() >= c.severity) {
        lastGood = v[sensor];
        return;
      }
      v[sensor] = episode === 'wild' ? wild() : stuckAt;
    },
  };
}
