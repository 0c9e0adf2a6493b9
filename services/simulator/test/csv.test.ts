import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SENSOR_NAMES } from '@pitwall/common';
import { CSV_COLUMNS, CsvError, formatCsv, parseCsv } from '../src/csv.js';
import { createFleet } from '../src/fleet.js';
import { telemetryTopic, toPayload } from '../src/payload.js';

const HEADER =
  'time,car,coolant_temp,intake_air_temp,intake_air_flow_speed,battery_percentage,battery_voltage,current_draw,speed,engine_vibration_amplitude,throttle_pos,tire_pressure_1_1,tire_pressure_1_2,tire_pressure_2_1,tire_pressure_2_2,accelerometer_1_1_value,accelerometer_1_2_value,accelerometer_2_1_value,accelerometer_2_2_value,control_unit_firmware';
const ROW = '1589979303.5,car1,88.5,20.1,12.3,80,13.9,40.2,55.5,7.1,0.3,240,238,241,239,0.01,-0.02,0.03,0.0,2000';

test('the header is the reference demo one', () => {
  assert.equal(CSV_COLUMNS.join(','), HEADER);
});

test('parses the reference format: epoch seconds to ms, car to vehicle id', () => {
  const [r, ...rest] = parseCsv(`${HEADER}\r\n${ROW}\r\n\r\n`);
  assert.equal(rest.length, 0);
  assert.equal(r!.vehicleId, 'car1');
  assert.equal(r!.ts, 1_589_979_303_500);
  assert.deepEqual(Object.keys(r!.values), [...SENSOR_NAMES]);
  assert.equal(r!.values.coolant_temp, 88.5);
  assert.equal(r!.values.accelerometer_2_2_value, 0);
  assert.equal(r!.values.control_unit_firmware, 2000);
});

test('columns are matched by name, in any order, quotes allowed', () => {
  const cols = HEADER.split(',');
  const vals = ROW.split(',');
  const order = cols.map((_, i) => i).reverse();
  const text = `${order.map((i) => `"${cols[i]}"`).join(',')}\n${order.map((i) => vals[i]).join(',')}\n`;
  assert.deepEqual(parseCsv(text), parseCsv(`${HEADER}\n${ROW}\n`));
});

test('format then parse round-trips fleet readings exactly', () => {
  const fleet = createFleet({
    cars: 3,
    seed: 9,
    failures: [{ vehicleId: 'car-0002', mode: 'faulty_sensor', onsetTs: 1_700_000_000_000, rampMs: 0, sensor: 'battery_percentage' }],
  });
  const readings = [0, 1, 2, 3, 4].flatMap((k) => fleet.tick(1_700_000_000_000 + k * 1000 + (k % 2 ? 250 : 0)));
  const text = formatCsv(readings);
  assert.equal(text.split('\n')[0], HEADER);
  assert.deepEqual(parseCsv(text), readings);
});

test('bad rows fail with an error naming the line', () => {
  const cases: [string, number, RegExp][] = [
    [`${HEADER}\n${ROW}\n${ROW.replace('88.5', 'hot')}`, 3, /coolant_temp: expected a number, got "hot"/],
    [`${HEADER}\n${ROW},extra`, 2, /expected 20 fields, got 21/],
    [`${HEADER}\n\n${ROW.split(',').slice(0, 5).join(',')}`, 3, /expected 20 fields, got 5/],
    [`${HEADER}\n${ROW.replace('1589979303.5', '')}`, 2, /time: expected a number, got ""/],
    [`${HEADER}\n${ROW.replace('car1', '')}`, 2, /car: empty vehicle id/],
    [`${HEADER}\n${ROW.replace(',80,', ',Infinity,')}`, 2, /battery_percentage: expected a number/],
    [`${HEADER.replace(',speed,', ',velocity,')}\n${ROW}`, 1, /unknown column "velocity"/],
    [`\n${HEADER.replace(',control_unit_firmware', '')}\n`, 2, /missing column\(s\) control_unit_firmware/],
    [`${HEADER},car\n`, 1, /column "car" given twice/],
    ['  \n', 1, /empty file/],
  ];
  for (const [text, line, pattern] of cases) {
    assert.throws(
      () => parseCsv(text),
      (err: unknown) => {
        assert.ok(err instanceof CsvError, String(err));
        assert.equal(err.line, line);
        assert.match(err.message, new RegExp(`^line ${line}: `));
        assert.match(err.message, pattern);
        assert.equal(err.reason, 'csv.invalid');
        return true;
      },
    );
  }
});

test('formatCsv refuses readings it could not write back', () => {
  const r = { vehicleId: 'a,b', ts: 0, values: {} };
  assert.throws(() => formatCsv([r]), /cannot be written/);
  assert.throws(() => formatCsv([{ ...r, vehicleId: 'a' }]), /coolant_temp is not a finite number/);
});

test('payload is { ts, ...18 sensors } without the vehicle id; the id is in the topic', () => {
  const [r] = createFleet({ cars: 1, seed: 1 }).tick(1_700_000_000_123);
  const payload = toPayload(r!);
  assert.deepEqual(Object.keys(payload), ['ts', ...SENSOR_NAMES]);
  assert.equal(payload.ts, 1_700_000_000_123);
  assert.equal(payload.speed, r!.values.speed);
  assert.deepEqual(JSON.parse(JSON.stringify(payload)), payload);
  assert.equal(telemetryTopic('car-0001'), 'vehicles/car-0001/telemetry');
  for (const bad of ['', 'a/b', 'car+', '#']) assert.throws(() => telemetryTopic(bad), /cannot be an MQTT topic level/);
  assert.throws(() => toPayload({ vehicleId: 'x', ts: 1, values: { speed: 1 } }), /lacks coolant_temp/);
});
