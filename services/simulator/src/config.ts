/**
 * Simulator configuration from the environment, read once in main.ts. Every bad variable is
 * reported together, each by name; the result is frozen.
 *
 *   MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD, LOG_LEVEL   shared, see readCommonConfig
 *   SIM_CARS               fleet size (default 20)
 *   SIM_RATE_HZ            readings per car per event-time second (default 1)
 *   SIM_TIME_SCALE         event time runs this many times faster than wall time (default 1)
 *   SIM_SEED               fleet seed (default 42)
 *   SIM_DURATION_S         event-time seconds to run, 0 = forever (default 0)
 *   SIM_FAILURES           `vehicleId:mode:onsetSeconds[:sensor],...` or `demo` (default none)
 *   SIM_FAILURE_RAMP_S     seconds from onset to full severity (default 60)
 *   SIM_REPLAY_CSV         path of a CSV to replay instead of the fleet
 *   SIM_GROUND_TRUTH_FILE  path to append one JSON line per injected failure
 *   SIM_RECEIPTS           cars confirm each alert on vehicles/{id}/alerts/receipt (default true)
 *   SIM_CERT_DIR           folder of the cars' certificates (<id>.pem, <id>.key, e.g. the fleet CA's
 *                          issued/car): each car connects on its own with its own identity. Unset: one
 *                          connection for the whole fleet as MQTT_CERT_FILE's identity (a gateway)
 *   MQTT_CA_FILE, MQTT_CERT_FILE, MQTT_KEY_FILE  shared, see readCommonConfig
 *   HEALTH_PORT            /healthz and /readyz (default 9105)
 */
import { ConfigError, configReader, readCommonConfig, type CommonConfig, type Env } from '@pitwall/common';
import { parseFailurePlans, type FailurePlan } from './failures.js';

export interface SimulatorConfig {
  common: CommonConfig;
  cars: number;
  seed: number;
  rateHz: number;
  timeScale: number;
  /** Undefined: run until stopped. */
  durationMs: number | undefined;
  failures: FailurePlan[];
  replayCsv: string | undefined;
  groundTruthFile: string | undefined;
  /** Cars answer each alert with a receipt. */
  receipts: boolean;
  /** One connection per car with the certificates in this folder; undefined: one connection. */
  certDir: string | undefined;
  healthPort: number;
}

/** Cars a simulator process connects one by one (each connection holds a file descriptor). */
export const MAX_CAR_CONNECTIONS = 10_000;

export function readSimulatorConfig(env: Env): Readonly<SimulatorConfig> {
  const c = configReader(env);
  const extra: ConfigError[] = [];
  const common = readCommonConfig(c, 'simulator');
  const cars = c.int('SIM_CARS', 20, { min: 1, max: 99_999 });
  const rampS = c.num('SIM_FAILURE_RAMP_S', 60, { min: 0 });
  const durationS = c.num('SIM_DURATION_S', 0, { min: 0 });
  const replayCsv = c.optional('SIM_REPLAY_CSV');
  const failuresText = c.optional('SIM_FAILURES');
  let failures: FailurePlan[] = [];
  if (failuresText !== undefined) {
    if (replayCsv !== undefined) {
      extra.push(new ConfigError('SIM_FAILURES', 'failures cannot be injected into a CSV replay (SIM_REPLAY_CSV is set)'));
    } else {
      try {
        failures = parseFailurePlans(failuresText, cars, Math.round(rampS * 1000));
      } catch (err) {
        extra.push(new ConfigError('SIM_FAILURES', (err as Error).message));
      }
    }
  }
  const value: SimulatorConfig = {
    common,
    cars,
    seed: c.int('SIM_SEED', 42),
    rateHz: c.num('SIM_RATE_HZ', 1, { min: 0.001, max: 1000 }),
    timeScale: c.num('SIM_TIME_SCALE', 1, { min: 0.001, max: 1_000_000 }),
    durationMs: durationS === 0 ? undefined : Math.round(durationS * 1000),
    failures,
    replayCsv,
    groundTruthFile: c.optional('SIM_GROUND_TRUTH_FILE'),
    receipts: c.bool('SIM_RECEIPTS', true),
    certDir: c.optional('SIM_CERT_DIR'),
    healthPort: c.int('HEALTH_PORT', 9105, { min: 0, max: 65_535 }),
  };
  if (value.certDir !== undefined && replayCsv === undefined && cars > MAX_CAR_CONNECTIONS) {
    extra.push(new ConfigError('SIM_CERT_DIR', `one connection per car allows at most ${MAX_CAR_CONNECTIONS} cars (SIM_CARS is ${cars}); use the load generator or a gateway identity`));
  }
  let frozen: Readonly<SimulatorConfig>;
  try {
    frozen = c.done(value);
  } catch (err) {
    throw err instanceof ConfigError && extra.length > 0 ? merge([err, ...extra]) : err;
  }
  if (extra.length > 0) throw merge(extra);
  return frozen;
}

/** One error naming every variable, like configReader's own. */
function merge(errors: readonly ConfigError[]): ConfigError {
  if (errors.length === 1) return errors[0]!;
  return new ConfigError(errors.map((e) => e.variable).join(', '), errors.map((e) => e.message).join('; '));
}
