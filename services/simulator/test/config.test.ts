import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@pitwall/common';
import { readSimulatorConfig } from '../src/config.js';

test('defaults', () => {
  const c = readSimulatorConfig({});
  assert.equal(c.cars, 20);
  assert.equal(c.rateHz, 1);
  assert.equal(c.timeScale, 1);
  assert.equal(c.seed, 42);
  assert.equal(c.durationMs, undefined);
  assert.deepEqual(c.failures, []);
  assert.equal(c.replayCsv, undefined);
  assert.equal(c.groundTruthFile, undefined);
  assert.equal(c.healthPort, 9105);
  assert.equal(c.common.mqtt.url, 'mqtts://127.0.0.1:8883');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.failures));
});

test('values are read from the environment', () => {
  const c = readSimulatorConfig({
    MQTT_URL: 'mqtt://broker:1883',
    SIM_CARS: '50',
    SIM_RATE_HZ: '2',
    SIM_TIME_SCALE: '10',
    SIM_SEED: '7',
    SIM_DURATION_S: '90.5',
    SIM_FAILURES: 'car-0050:battery_degradation:10',
    SIM_FAILURE_RAMP_S: '15',
    SIM_GROUND_TRUTH_FILE: '/tmp/truth.jsonl',
    HEALTH_PORT: '0',
  });
  assert.equal(c.common.mqtt.url, 'mqtt://broker:1883');
  assert.deepEqual([c.cars, c.rateHz, c.timeScale, c.seed, c.durationMs, c.healthPort], [50, 2, 10, 7, 90_500, 0]);
  assert.deepEqual(c.failures, [{ vehicleId: 'car-0050', mode: 'battery_degradation', onsetOffsetMs: 10_000, rampMs: 15_000 }]);
  assert.equal(c.groundTruthFile, '/tmp/truth.jsonl');
  assert.equal(readSimulatorConfig({ SIM_REPLAY_CSV: 'data/demo.csv' }).replayCsv, 'data/demo.csv');
  assert.equal(readSimulatorConfig({ SIM_FAILURES: 'demo' }).failures.length, 3);
});

test('bad values fail at start naming the variable', () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ SIM_CARS: '0' }, 'SIM_CARS', /must be >= 1/],
    [{ SIM_CARS: 'many' }, 'SIM_CARS', /expected an integer/],
    [{ SIM_RATE_HZ: '0' }, 'SIM_RATE_HZ', /must be >= 0.001/],
    [{ SIM_TIME_SCALE: '-1' }, 'SIM_TIME_SCALE', /must be >= 0.001/],
    [{ SIM_SEED: '1.5' }, 'SIM_SEED', /expected an integer/],
    [{ SIM_DURATION_S: 'forever' }, 'SIM_DURATION_S', /expected a number/],
    [{ SIM_FAILURE_RAMP_S: '-5' }, 'SIM_FAILURE_RAMP_S', /must be >= 0/],
    [{ SIM_FAILURES: 'car-0001:meltdown:5' }, 'SIM_FAILURES', /unknown failure mode "meltdown"/],
    [{ SIM_FAILURES: 'car-0021:tire_leak:5' }, 'SIM_FAILURES', /unknown vehicle "car-0021"/],
    [{ SIM_CARS: '2', SIM_FAILURES: 'demo' }, 'SIM_FAILURES', /needs at least 3 cars/],
    [{ SIM_FAILURES: 'demo', SIM_REPLAY_CSV: 'x.csv' }, 'SIM_FAILURES', /cannot be injected into a CSV replay/],
    [{ HEALTH_PORT: '70000' }, 'HEALTH_PORT', /must be <= 65535/],
    [{ MQTT_URL: 'http://broker' }, 'MQTT_URL', /expected a mqtt/],
    [{ SIM_CARS: 'x', SIM_FAILURES: 'car-0001:nope:1' }, 'SIM_CARS, SIM_FAILURES', /SIM_CARS: .*SIM_FAILURES: /],
  ];
  for (const [env, variable, pattern] of cases) {
    assert.throws(
      () => readSimulatorConfig(env),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.variable, variable, JSON.stringify(env));
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
});
