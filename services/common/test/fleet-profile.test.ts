import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, InvalidInputError } from '../src/errors.js';
import { CARDATA_FAILING } from '../src/testing.js';
import { applyFleetProfile, loadFleetProfile, parseFleetProfile, PITWALL_PROFILE, toCanonical } from '../src/fleet-profile.js';
import { SENSOR_NAMES, SENSORS } from '../src/sensors.js';

const bySensor = (name: string) => loadFleetProfile('cardata-v1', 'X').sensors.find((m) => m.sensor === name)!;

test('pitwall is the identity: every field its own name, nothing converted, canonical ranges', () => {
  assert.equal(loadFleetProfile('pitwall', 'X'), PITWALL_PROFILE);
  assert.equal(PITWALL_PROFILE.identity, true);
  assert.deepEqual(
    PITWALL_PROFILE.sensors.map((m) => [m.field, m.scale, m.offset, m.plausible]),
    SENSORS.map((s) => [s.name, 1, 0, s.plausible]),
  );
});

test('cardata-v1 converts to canonical units: [sensor, value as the fleet sends it, canonical value]', () => {
  const profile = loadFleetProfile('cardata-v1', 'X');
  assert.equal(profile.identity, false);
  assert.deepEqual(
    profile.sensors.map((m) => m.field),
    SENSOR_NAMES,
  );
  const table: [string, number, number][] = [
    ['battery_percentage', 0.82654595, 82.654595],
    ['battery_percentage', -0.29927, -29.927],
    ['tire_pressure_1_1', 32, 220.63223338138755],
    ['tire_pressure_2_2', 20, 137.89514586336722],
    ['coolant_temp', 39.395103, 39.395103],
    ['battery_voltage', 246.12367, 246.12367],
  ];
  for (const [sensor, sent, canonical] of table) assert.ok(Math.abs(toCanonical(bySensor(sensor), sent) - canonical) < 1e-9, `${sensor} ${sent}`);
  // Ranges are declared in the fleet's unit and kept in Pitwall's.
  assert.deepEqual(bySensor('battery_voltage').plausible, [150, 450]);
  assert.deepEqual(
    bySensor('tire_pressure_1_2').plausible.map((x) => Math.round(x)),
    [103, 345],
  );
  assert.deepEqual(bySensor('battery_percentage').plausible, [0, 100]);
  assert.deepEqual(bySensor('coolant_temp').plausible, [-40, 130]);
});

test('units: °F and K to °C, mph and m/s to km/h, bar to kPa', () => {
  const p = parseFleetProfile(
    {
      profile: 'units',
      sensors: { coolant_temp: { unit: '°F' }, intake_air_temp: { unit: 'K' }, speed: { unit: 'mph' }, tire_pressure_1_1: { unit: 'bar' }, accelerometer_1_1_value: { unit: 'm/s²' } },
    },
    'units.json',
  );
  const m = (s: string) => p.sensors.find((x) => x.sensor === s)!;
  assert.ok(Math.abs(toCanonical(m('coolant_temp'), 212) - 100) < 1e-9);
  assert.ok(Math.abs(toCanonical(m('intake_air_temp'), 273.15)) < 1e-9);
  assert.ok(Math.abs(toCanonical(m('speed'), 60) - 96.56064) < 1e-9);
  assert.equal(toCanonical(m('tire_pressure_1_1'), 2.5), 250);
  assert.ok(Math.abs(toCanonical(m('accelerometer_1_1_value'), 9.80665) - 1) < 1e-12);
  // Ranges default to the canonical ones, whatever the unit.
  assert.deepEqual(m('coolant_temp').plausible, [-40, 130]);
});

test('a profile that cannot be right is refused, naming the file and the key', () => {
  const cases: [unknown, RegExp][] = [
    [[], /x\.json: must be a JSON object/],
    [{ profile: 'Bad Name' }, /"profile" must be a name/],
    [{ profile: 'p', extra: 1 }, /unknown key "extra"/],
    [{ profile: 'p', sensors: { rpm: {} } }, /unknown sensor "rpm"/],
    [{ profile: 'p', sensors: { speed: { unit: 'furlong/fortnight' } } }, /sensors\.speed\.unit "furlong\/fortnight" cannot be converted to km\/h \(known: km\/h, mph, m\/s\)/],
    [{ profile: 'p', sensors: { current_draw: { unit: 'mA' } } }, /cannot be converted to A \(known: A\)/],
    [{ profile: 'p', sensors: { speed: { plausible: [10, 5] } } }, /sensors\.speed\.plausible must be \[min, max\] with min < max/],
    [{ profile: 'p', sensors: { speed: { plausible: [0, null] } } }, /plausible must be/],
    [{ profile: 'p', sensors: { speed: { field: 'v' }, coolant_temp: { field: 'v' } } }, /field "v" is also the field of coolant_temp/],
    [{ profile: 'p', sensors: { speed: { field: 'ts' } } }, /field must be a payload key other than ts/],
    [{ profile: 'p', sensors: { speed: { unit: 'mph', scale: 2 } } }, /sensors\.speed: unknown key "scale"/],
  ];
  for (const [json, expected] of cases) assert.throws(() => parseFleetProfile(json, 'x.json'), expected, JSON.stringify(json));
});

test('INGEST_FLEET_PROFILE-style loading: by name, by path, and errors naming the variable', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'profiles-'));
  writeFileSync(path.join(dir, 'mine.json'), JSON.stringify({ profile: 'mine', sensors: { coolant_temp: { field: 'COOLANT_TEMP' } } }));
  writeFileSync(path.join(dir, 'broken.json'), '{ "profile": ');
  assert.equal(loadFleetProfile('mine', 'V', dir).sensors[0]!.field, 'COOLANT_TEMP');
  assert.equal(loadFleetProfile(path.join(dir, 'mine.json'), 'V').name, 'mine');
  assert.throws(
    () => loadFleetProfile('nope', 'INGEST_FLEET_PROFILE', dir),
    (err: unknown) => err instanceof ConfigError && err.variable === 'INGEST_FLEET_PROFILE' && /no fleet profile "nope" \(ENOENT/.test(err.message),
  );
  assert.throws(
    () => loadFleetProfile('broken', 'INGEST_FLEET_PROFILE', dir),
    (err: unknown) => err instanceof ConfigError && /INGEST_FLEET_PROFILE: fleet profile .*broken\.json is not JSON/.test(err.message),
  );
});

test('applyFleetProfile: converts, rounds converted integer sensors, flags the implausible, refuses an integer overflow', () => {
  const cardata = loadFleetProfile('cardata-v1', 'TEST');
  const sent: Record<string, number> = { ...CARDATA_FAILING };
  const out: Record<string, unknown> = {};
  const asked: Array<[string, boolean]> = [];
  const flagged = applyFleetProfile(cardata, (field, integer) => (asked.push([field, integer]), sent[field]!), out);
  assert.deepEqual(flagged, ['coolant_temp', 'battery_percentage']);
  assert.equal(out.tire_pressure_2_2, 138);
  assert.ok(Math.abs((out.battery_percentage as number) + 2992.7) < 1e-9);
  // Tire pressures are converted, so not checked as integers as sent; the firmware is.
  assert.deepEqual(
    asked.filter(([, integer]) => integer).map(([field]) => field),
    ['control_unit_firmware'],
  );
  assert.throws(
    () => applyFleetProfile(cardata, (field) => (field === 'tire_pressure_1_1' ? 1e12 : sent[field]!), {}, { vehicleId: 'car1' }),
    (err: unknown) => err instanceof InvalidInputError && err.reason === 'field.not_integer' && /tire_pressure_1_1/.test(err.message),
  );
});
