/**
 * The 18 sensor fields of a car's telemetry reading, in the order of the reference demo's CarData
 * record and CSV header. This list is the single source of truth for validation, Avro schemas,
 * feature computation and the simulator.
 *
 * `plausible` is the physically sensible range. A reading outside it is NOT rejected: a broken or
 * failing sensor is itself a maintenance finding, so the value flows on and is flagged in
 * `out_of_range`.
 */
export type SensorKind = 'float' | 'int';

/** Component groups an operator can act on. */
export type SensorGroup = 'cooling' | 'intake' | 'battery' | 'drivetrain' | 'tires' | 'chassis' | 'firmware';

export interface SensorSpec {
  readonly name: string;
  readonly kind: SensorKind;
  readonly unit: string;
  readonly plausible: readonly [number, number];
  readonly group: SensorGroup;
}

const s = (name: string, kind: SensorKind, unit: string, min: number, max: number, group: SensorGroup): SensorSpec =>
  Object.freeze({ name, kind, unit, plausible: Object.freeze([min, max] as const), group });

export const SENSORS: readonly SensorSpec[] = Object.freeze([
  s('coolant_temp', 'float', '°C', -40, 130, 'cooling'),
  s('intake_air_temp', 'float', '°C', -40, 80, 'intake'),
  s('intake_air_flow_speed', 'float', 'g/s', 0, 400, 'intake'),
  s('battery_percentage', 'float', '%', 0, 100, 'battery'),
  s('battery_voltage', 'float', 'V', 9, 16, 'battery'),
  s('current_draw', 'float', 'A', 0, 400, 'battery'),
  s('speed', 'float', 'km/h', 0, 300, 'drivetrain'),
  s('engine_vibration_amplitude', 'float', 'mm/s', 0, 200, 'drivetrain'),
  s('throttle_pos', 'float', 'ratio', 0, 1, 'drivetrain'),
  s('tire_pressure_1_1', 'int', 'kPa', 100, 450, 'tires'),
  s('tire_pressure_1_2', 'int', 'kPa', 100, 450, 'tires'),
  s('tire_pressure_2_1', 'int', 'kPa', 100, 450, 'tires'),
  s('tire_pressure_2_2', 'int', 'kPa', 100, 450, 'tires'),
  s('accelerometer_1_1_value', 'float', 'g', -8, 8, 'chassis'),
  s('accelerometer_1_2_value', 'float', 'g', -8, 8, 'chassis'),
  s('accelerometer_2_1_value', 'float', 'g', -8, 8, 'chassis'),
  s('accelerometer_2_2_value', 'float', 'g', -8, 8, 'chassis'),
  s('control_unit_firmware', 'int', 'build', 0, 100_000, 'firmware'),
]);

export const SENSOR_NAMES: readonly string[] = Object.freeze(SENSORS.map((x) => x.name));

export const SENSOR_BY_NAME: ReadonlyMap<string, SensorSpec> = new Map(SENSORS.map((x) => [x.name, x]));

/** What an operator should look at when a group's sensors drive an alert. */
export const GROUP_ACTIONS: Readonly<Record<SensorGroup, { component: string; action: string }>> = Object.freeze({
  cooling: { component: 'cooling system', action: 'Check coolant level, thermostat and radiator fan.' },
  intake: { component: 'air intake', action: 'Inspect air filter and intake sensors.' },
  battery: { component: 'battery / electrical', action: 'Test battery health and charging system.' },
  drivetrain: { component: 'engine mounts / drivetrain', action: 'Inspect engine mounts, drivetrain and balancing.' },
  tires: { component: 'tires', action: 'Check tire pressure and inspect for punctures.' },
  chassis: { component: 'suspension / chassis', action: 'Inspect suspension and accelerometer mounting.' },
  firmware: { component: 'control unit firmware', action: 'Verify control unit firmware version.' },
});

/** A validated telemetry reading as it travels on `vehicle.telemetry`. */
export interface TelemetryRecord {
  vehicle_id: string;
  /** Event time, epoch milliseconds. */
  ts: number;
  /** Sensor values keyed by SENSOR_NAMES. */
  [sensor: string]: number | string | string[] | boolean | null | undefined;
  /** Names of sensors whose value lies outside the plausible range. */
  out_of_range: string[];
  /** Telemetry v2: ignition state if the car reports it (null/absent: not reported). */
  ignition_on?: boolean | null;
}

/** Sensor names whose value lies outside its plausible range. */
export function outOfRange(values: Readonly<Record<string, number>>): string[] {
  const flagged: string[] = [];
  for (const spec of SENSORS) {
    const v = values[spec.name];
    if (v === undefined || v < spec.plausible[0] || v > spec.plausible[1]) flagged.push(spec.name);
  }
  return flagged;
}
