import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import avro from 'avsc';
import { defaultSchemasDir, loadSchemaFile } from '@pitwall/common';
import { createReadOnlyDecoder, describeRead, parseBound, resolveBounds, type OffsetBound, type PartitionWatermarks } from '../src/kafka-history.js';

describe('parseBound', () => {
  const ok: Array<[string, OffsetBound]> = [
    ['earliest', { kind: 'earliest' }],
    ['latest', { kind: 'latest' }],
    [' 2026-01-01T10:00:00Z ', { kind: 'time', ts: Date.UTC(2026, 0, 1, 10) }],
    ['2026-01-01T10:00:00.250+01:00', { kind: 'time', ts: Date.UTC(2026, 0, 1, 9, 0, 0, 250) }],
    ['ts:1735689600000', { kind: 'time', ts: 1735689600000 }],
    ['offset:42', { kind: 'offset', offset: 42n }],
    [
      '0:10,2:7',
      {
        kind: 'partitions',
        offsets: new Map([
          [0, 10n],
          [2, 7n],
        ]),
      },
    ],
  ];
  for (const [text, want] of ok) it(`parses "${text}"`, () => assert.deepEqual(parseBound(text), want));
  const bad: Array<[string, RegExp]> = [
    ['yesterday', /expected earliest, latest/],
    ['2026-13-45T99:00:00Z', /expected/],
    ['offset:-1', /expected/],
    ['0:1,0:2', /partition 0 given twice/],
    ['', /expected/],
  ];
  for (const [text, re] of bad) it(`refuses "${text}"`, () => assert.throws(() => parseBound(text), re));
});

describe('resolveBounds', () => {
  const marks: PartitionWatermarks[] = [
    { partition: 1, low: 5n, high: 50n },
    { partition: 0, low: 0n, high: 100n },
    { partition: 2, low: 0n, high: 0n },
  ];
  // Time lookup: offset = ts / 10, except partition 1 which has no record that late.
  const byTime = async (ts: number): Promise<Map<number, bigint>> =>
    new Map([
      [0, BigInt(ts / 10)],
      [2, 0n],
    ]);
  const table: Array<[string, string, string, Array<[number, number, number]>]> = [
    [
      'everything',
      'earliest',
      'latest',
      [
        [0, 0, 100],
        [1, 5, 50],
        [2, 0, 0],
      ],
    ],
    [
      'offsets clamp to the log',
      'offset:2',
      'offset:70',
      [
        [0, 2, 70],
        [1, 5, 50],
        [2, 0, 0],
      ],
    ],
    [
      'a reversed range is empty',
      'offset:60',
      'offset:10',
      [
        [0, 60, 60],
        [1, 50, 50],
        [2, 0, 0],
      ],
    ],
    [
      'per partition: only those',
      '0:10,1:7',
      'latest',
      [
        [0, 10, 100],
        [1, 7, 50],
      ],
    ],
    ['both per partition: the common ones', '0:10,1:7', '1:9', [[1, 7, 9]]],
    [
      'times: a partition without a later record ends at its end offset',
      'ts:200',
      'ts:900',
      [
        [0, 20, 90],
        [1, 50, 50],
        [2, 0, 0],
      ],
    ],
  ];
  for (const [name, from, to, want] of table) {
    it(name, async () => {
      const got = await resolveBounds(marks, parseBound(from), parseBound(to), byTime);
      assert.deepEqual(
        got.map((p) => [p.partition, Number(p.fromOffset), Number(p.toOffset)]),
        want,
      );
    });
  }
  it('refuses a partition the topic does not have', async () => {
    await assert.rejects(resolveBounds(marks, parseBound('7:1'), parseBound('latest'), byTime), /partition 7 does not exist \(the topic has 0, 1, 2\)/);
  });
});

describe('createReadOnlyDecoder', () => {
  const frame = (id: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0, id]), body]);
  const telemetry = (extra: Record<string, unknown>): Record<string, unknown> => ({
    vehicle_id: 'car-1',
    ts: 1000,
    coolant_temp: 90,
    intake_air_temp: 20,
    intake_air_flow_speed: 10,
    battery_percentage: 80,
    battery_voltage: 12.6,
    current_draw: 10,
    speed: 50,
    engine_vibration_amplitude: 3,
    throttle_pos: 10,
    tire_pressure_1_1: 230,
    tire_pressure_1_2: 230,
    tire_pressure_2_1: 230,
    tire_pressure_2_2: 230,
    accelerometer_1_1_value: 0,
    accelerometer_1_2_value: 0,
    accelerometer_2_1_value: 0,
    accelerometer_2_2_value: 0,
    control_unit_firmware: 1,
    out_of_range: [],
    received_at: 1001,
    ...extra,
  });

  it('reads records of every writer version into the reader schema and registers nothing', async () => {
    const v1 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1);
    const v2 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2);
    const asked: number[] = [];
    const store = { getSchema: async (id: number) => (asked.push(id), id === 1 ? v1 : v2) };
    const decoder = createReadOnlyDecoder<Record<string, unknown>>(store, v2);
    const t1 = avro.Type.forSchema(v1);
    const t2 = avro.Type.forSchema(v2, { wrapUnions: false });
    const a = await decoder.decode(frame(1, t1.toBuffer(telemetry({}))));
    const b = await decoder.decode(frame(2, t2.toBuffer(telemetry({ ignition_on: false }))));
    const c = await decoder.decode(frame(1, t1.toBuffer(telemetry({ speed: 7 }))));
    assert.equal(a.ignition_on, null);
    assert.equal(b.ignition_on, false);
    assert.equal(c.speed, 7);
    assert.deepEqual(asked, [1, 2], 'each writer schema fetched once');
    await assert.rejects(decoder.decode(Buffer.from([1, 2, 3])), /not a Confluent-framed/);
    await assert.rejects(decoder.decode(frame(1, Buffer.from([1]))), /cannot decode/);
  });
});

describe('describeRead', () => {
  it('states offsets as strings and the overall time span', () => {
    const d = describeRead({
      range: { topic: 't', from: 'earliest', to: 'latest', partitions: [] },
      partitions: [
        { partition: 0, fromOffset: 3n, toOffset: 9n, records: 6, firstTimestamp: 50, lastTimestamp: 90 },
        { partition: 1, fromOffset: 0n, toOffset: 0n, records: 0, firstTimestamp: null, lastTimestamp: null },
        { partition: 2, fromOffset: 1n, toOffset: 2n, records: 1, firstTimestamp: 40, lastTimestamp: 40 },
      ],
    });
    assert.equal(d.records, 7);
    assert.equal(d.fromTs, 40);
    assert.equal(d.toTs, 90);
    assert.deepEqual(d.partitions[0], { partition: 0, fromOffset: '3', toOffset: '9', records: 6, firstTimestamp: 50, lastTimestamp: 90 });
  });
});
