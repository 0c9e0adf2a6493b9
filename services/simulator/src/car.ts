/**
 * The healthy physics of one simulated car: a drive-cycle state machine for speed, and first-order
 * lags for everything with thermal or electrical inertia. Units are the sensor units of SENSORS;
 * accelerations inside the model are in km/h per second.
 *
 * The model is split in two so time can be stepped independently of sampling:
 *   advance(dtS)  integrates state over dtS seconds (sub-stepped at <= 1 s, process noise ~ sqrt(dt))
 *   sample()      measures the current state, adding per-reading sensor noise
 * Healthy samples are clamped into SENSORS' plausible ranges; failures are applied on top elsewhere.
 *
 * Per-car parameters vary only mildly (ambient, tire baselines, preferred cruise speed, electrical
 * base load, firmware build) so that healthy cars look statistically alike over 10 s windows.
 */
import type { Rng } from './random.js';

/** Release builds of the control unit firmware found in the fleet. */
export const FIRMWARE_BUILDS: readonly number[] = Object.freeze([41027, 41102, 41230]);

export const MAX_SPEED_KMH = 130;
const MAX_STEP_S = 1;
/** Longer gaps than this are not integrated in full: the state has forgotten its past by then. */
const MAX_CATCH_UP_S = 600;
const KMH_PER_S_TO_G = 1 / 3.6 / 9.81;

export const TIRES = Object.freeze(['tire_pressure_1_1', 'tire_pressure_1_2', 'tire_pressure_2_1', 'tire_pressure_2_2'] as const);
export const ACCELEROMETERS = Object.freeze(['accelerometer_1_1_value', 'accelerometer_1_2_value', 'accelerometer_2_1_value', 'accelerometer_2_2_value'] as const);

type Phase = 'stop' | 'drive' | 'brake';

export interface CarSample {
  /** Physical values by sensor name, unrounded. */
  values: Record<string, number>;
  /** Context failures use to shape their effect. */
  load: number;
  charging: number;
}

export interface CarModel {
  advance(dtS: number): void;
  sample(): CarSample;
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
/** Fraction of the way a first-order lag with time constant tau moves in h seconds. */
const lag = (h: number, tau: number): number => 1 - Math.exp(-h / tau);

export function createCarModel(rng: Rng): CarModel {
  const p = {
    cruise: rng.uniform(50, 100),
    maxAccel: rng.uniform(6, 10),
    maxBrake: rng.uniform(10, 14),
    ambient: rng.uniform(12, 26),
    baseAmps: rng.uniform(16, 24),
    tireBase: TIRES.map(() => rng.uniform(229, 241)),
    accelGain: ACCELEROMETERS.map(() => rng.uniform(0.9, 1.1)),
    firmware: rng.pick(FIRMWARE_BUILDS),
  };
  const s = {
    phase: (rng.next() < 0.3 ? 'stop' : 'drive') as Phase,
    phaseLeft: rng.uniform(5, 60),
    target: 0,
    targetLeft: 0,
    speed: 0,
    accel: 0,
    throttle: 0,
    load: rng.uniform(0.1, 0.4),
    soak: rng.uniform(0, 0.6),
    coolant: rng.uniform(60, 92),
    charging: 1,
    tireWarm: rng.uniform(0, 0.5),
    battery: rng.uniform(70, 97),
  };

  const newTarget = (): void => {
    s.target = clamp(p.cruise + rng.normal(0, 22), 15, MAX_SPEED_KMH);
    s.targetLeft = rng.uniform(8, 30);
  };
  const throttleFor = (speed: number, accel: number): number => (s.phase === 'stop' ? 0 : clamp(0.035 + 0.0042 * speed + 0.06 * accel, 0, 1));

  if (s.phase === 'drive') {
    s.speed = clamp(p.cruise + rng.normal(0, 15), 0, MAX_SPEED_KMH);
    s.target = s.speed;
    s.targetLeft = rng.uniform(3, 20);
  } else {
    s.charging = 0.05;
  }
  s.throttle = throttleFor(s.speed, 0);

  const step = (h: number): void => {
    s.phaseLeft -= h;
    if (s.phase === 'stop' && s.phaseLeft <= 0) {
      s.phase = 'drive';
      s.phaseLeft = rng.uniform(40, 240);
      newTarget();
    } else if (s.phase === 'drive') {
      s.targetLeft -= h;
      if (s.targetLeft <= 0) newTarget();
      if (s.phaseLeft <= 0) {
        s.phase = 'brake';
        s.target = 0;
      }
    }
    const before = s.speed;
    if (s.phase === 'stop') {
      s.speed = 0;
    } else {
      const wanted = clamp((s.target - s.speed) / 2.5, -p.maxBrake, p.maxAccel) + rng.normal(0, 0.4) * Math.sqrt(h);
      s.speed = clamp(s.speed + wanted * h, 0, MAX_SPEED_KMH);
      if (s.phase === 'brake' && s.speed < 0.5) {
        s.speed = 0;
        s.phase = 'stop';
        s.phaseLeft = rng.uniform(4, 25);
      }
    }
    s.accel = (s.speed - before) / h;
    s.throttle = throttleFor(s.speed, s.accel);
    s.load += (s.throttle - s.load) * lag(h, 30);
    const idle = s.speed < 5 ? 1 : 0;
    s.soak += ((idle ? 1 : Math.max(0, 1 - s.speed / 50)) - s.soak) * lag(h, 90);
    const coolantTarget = 86 + 14 * s.load + 3 * s.soak;
    s.coolant += (coolantTarget - s.coolant) * lag(h, s.coolant < coolantTarget ? 50 : 100);
    // The alternator charges while driving; at a standstill the idling engine barely does.
    s.charging += ((s.phase === 'stop' ? 0.05 : 1) - s.charging) * lag(h, 3);
    s.tireWarm += (s.speed / MAX_SPEED_KMH - s.tireWarm) * lag(h, 300);
    const amps = p.baseAmps + 70 * s.throttle;
    const recharge = s.charging > 0.7 && s.battery < 97 ? 0.0012 : 0;
    s.battery = clamp(s.battery + h * (recharge - amps * 1e-5), 0, 100);
  };

  return {
    advance(dtS) {
      let left = Math.min(dtS, MAX_CATCH_UP_S);
      while (left > 1e-9) {
        const h = Math.min(MAX_STEP_S, left);
        step(h);
        left -= h;
      }
    },
    sample() {
      const speed = s.speed <= 0 ? 0 : clamp(s.speed + rng.normal(0, 0.15), 0, MAX_SPEED_KMH);
      const throttle = s.phase === 'stop' ? 0 : clamp(s.throttle + rng.normal(0, 0.008), 0, 1);
      const current = Math.max(0, p.baseAmps + 70 * throttle + rng.normal(0, 1.2));
      const restVolts = 12.2 + 0.5 * (s.battery / 100);
      const volts = restVolts + s.charging * (14.2 - restVolts) - 0.003 * (current - 20) + rng.normal(0, 0.03);
      const vibration = (1.8 + 0.1 * s.speed + 2.5 * throttle) * (1 + rng.normal(0, 0.05)) + Math.abs(rng.normal(0, 0.15));
      const gLong = s.accel * KMH_PER_S_TO_G;
      const road = 0.012 + 0.0022 * s.speed;
      const values: Record<string, number> = {
        coolant_temp: s.coolant + rng.normal(0, 0.15),
        intake_air_temp: p.ambient + 2 + 9 * s.soak + rng.normal(0, 0.25),
        intake_air_flow_speed: clamp(3.2 + 125 * throttle + 0.1 * s.speed + rng.normal(0, 0.8), 0.5, 400),
        battery_percentage: clamp(s.battery + rng.normal(0, 0.01), 0, 100),
        battery_voltage: clamp(volts, 9, 16),
        current_draw: Math.min(400, current),
        speed,
        engine_vibration_amplitude: clamp(vibration, 0, 200),
        throttle_pos: throttle,
      };
      TIRES.forEach((name, i) => {
        values[name] = p.tireBase[i]! + 4 * s.tireWarm + rng.normal(0, 0.7);
      });
      ACCELEROMETERS.forEach((name, i) => {
        values[name] = clamp(gLong * p.accelGain[i]! + rng.normal(0, road), -8, 8);
      });
      values.control_unit_firmware = p.firmware;
      return { values, load: s.load, charging: s.charging };
    },
  };
}
