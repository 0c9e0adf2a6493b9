import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AGGREGATES, computeFeatures, FEATURE_NAMES, FEATURE_SPEC_ID, featureFields, featureVector, featureVectorOfDecoded } from '../src/features.js';
import { SENSOR_NAMES } from '../src/sensors.js';
import { defaultSchemasDir } from '../src/registry.js';

const N = SENSOR_NAMES.length;
const ev = (ts: number, v: number, sensor = 0) => {
  const values = new Float64Array(N).fill(1);
  values[sensor] = v;
  return { ts, values };
};
const agg = (out: Float64Array, sensor: number, name: (typeof AGGREGATES)[number]) => out[sensor * AGGREGATES.length + AGGREGATES.indexOf(name)]!;

const table: Array<[string, Array<[number, number]>, Record<string, number>]> = [
  ['single event', [[1000, 5]], { mean: 5, std: 0, min: 5, max: 5, last: 5, slope: 0 }],
  [
    'rising 1 unit/s',
    [
      [0, 0],
      [1000, 1],
      [2000, 2],
      [3000, 3],
    ],
    { mean: 1.5, std: Math.sqrt(1.25), min: 0, max: 3, last: 3, slope: 1 },
  ],
  [
    'falling 2 units/s, out of order',
    [
      [2000, 6],
      [0, 10],
      [1000, 8],
    ],
    { mean: 8, std: Math.sqrt(8 / 3), min: 6, max: 10, last: 6, slope: -2 },
  ],
  [
    'constant with spike',
    [
      [0, 1],
      [500, 1],
      [1000, 9],
      [1500, 1],
    ],
    { mean: 3, std: Math.sqrt(12), min: 1, max: 9, last: 1 },
  ],
];
for (const [name, points, expected] of table) {
  test(`features: ${name}`, () => {
    const out = computeFeatures(points.map(([ts, v]) => ev(ts, v)));
    for (const [a, want] of Object.entries(expected)) {
      assert.ok(Math.abs(agg(out, 0, a as (typeof AGGREGATES)[number]) - want) < 1e-9, `${a}: got ${agg(out, 0, a as never)} want ${want}`);
    }
    // every other sensor is the constant 1
    assert.equal(agg(out, 1, 'mean'), 1);
    assert.equal(agg(out, 1, 'std'), 0);
    assert.equal(agg(out, 1, 'slope'), 0);
  });
}

test('features do not depend on arrival order', () => {
  const events = Array.from({ length: 30 }, (_, i) => ev(i * 333, Math.sin(i) * 10 + i));
  const a = computeFeatures(events);
  const b = computeFeatures([...events].reverse());
  const c = computeFeatures([...events].sort(() => 0.5 - ((events.length * 7919) % 13) / 13));
  assert.deepEqual(a, b);
  assert.deepEqual(a, c);
});

test('feature names are sensor x aggregate, and the committed feature spec matches', () => {
  assert.equal(FEATURE_NAMES.length, N * AGGREGATES.length);
  assert.equal(FEATURE_NAMES[0], 'coolant_temp_mean');
  const spec = JSON.parse(readFileSync(`${defaultSchemasDir()}features/feature-spec.json`, 'utf8'));
  assert.equal(spec.id, FEATURE_SPEC_ID);
  assert.deepEqual(spec.features, FEATURE_NAMES);
  const avsc = JSON.parse(readFileSync(`${defaultSchemasDir()}features/v1.avsc`, 'utf8'));
  assert.deepEqual(
    avsc.fields.slice(4).map((f: { name: string }) => f.name),
    FEATURE_NAMES,
  );
});

test('featureFields and featureVector round-trip', () => {
  const out = computeFeatures([ev(0, 3), ev(1000, 4)]);
  const back = featureVector(featureFields(out));
  assert.deepEqual(
    Array.from(back),
    Array.from(out).map((x) => Math.fround(x)),
  );
  assert.throws(() => featureVector({}), /missing/);
});

test('featureFields sets the features on the object it is given, keeping its own fields', () => {
  const out = computeFeatures([ev(0, 3), ev(1000, 4)]);
  const into = { vehicle_id: 'car-1', window_start: 0 };
  const record = featureFields(out, into);
  assert.equal(record, into);
  assert.equal(record.vehicle_id, 'car-1');
  assert.deepEqual(Object.keys(record), ['vehicle_id', 'window_start', ...FEATURE_NAMES]);
  assert.deepEqual(featureVector(record), featureVector(featureFields(out)));
});

test('featureVectorOfDecoded reads records of a class (decoded Avro) by position, as featureVector by name', () => {
  const fields = featureFields(computeFeatures([ev(0, 3), ev(1000, 4)]));
  // Like avsc's generated record class: identity fields first, then the features in schema order.
  class Rec {
    vehicle_id = 'car-1';
    window_start = 0;
    constructor(f: Record<string, number>) {
      Object.assign(this, f);
    }
  }
  const rec = (f: Record<string, number>): Record<string, unknown> => new Rec(f) as unknown as Record<string, unknown>;
  assert.deepEqual(featureVectorOfDecoded(rec(fields)), featureVector(fields));
  // A second record of the class reuses the layout and reads its own values.
  const other = rec(Object.fromEntries(Object.keys(fields).map((k, i) => [k, i])));
  assert.deepEqual(
    Array.from(featureVectorOfDecoded(other)),
    FEATURE_NAMES.map((_, i) => i),
  );
  // A subset in another order (a model's own feature list).
  const names = [FEATURE_NAMES[5]!, FEATURE_NAMES[0]!];
  assert.deepEqual(Array.from(featureVectorOfDecoded(other, names)), [5, 0]);
  // Plain objects and an instance with a key of its own are read by name.
  assert.deepEqual(featureVectorOfDecoded(fields), featureVector(fields));
  const odd = rec(fields);
  odd.extra = 1;
  assert.deepEqual(featureVectorOfDecoded(odd), featureVector(fields));
  // A class whose records lack a feature: the same error as by name.
  class Partial {
    vehicle_id = 'car-1';
  }
  assert.throws(() => featureVectorOfDecoded(new Partial() as unknown as Record<string, unknown>), /feature coolant_temp_mean missing/);
});
