import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { compileFeaturesReader, defaultSchemasDir, FEATURE_NAMES, featureVector, loadSchemaFile } from '../src/index.js';

const FIXTURES = path.join(defaultSchemasDir(), 'fixtures');
const fixtureBody = (name: string): Buffer => Buffer.from(readFileSync(path.join(FIXTURES, name), 'utf8').trim(), 'hex');

/** What the services' codec gives: avsc with the reader schema v2 resolving the writer's. */
async function generic(writer: avro.Schema, body: Buffer): Promise<Record<string, unknown>> {
  const reader = avro.Type.forSchema(await loadSchemaFile(defaultSchemasDir(), 'features', 2), { wrapUnions: false });
  const w = avro.Type.forSchema(writer, { wrapUnions: false });
  return reader.fromBuffer(body, reader.createResolver(w)) as Record<string, unknown>;
}

function sameAsGeneric(got: ReturnType<ReturnType<typeof compileFeaturesReader> & object>, features: Float32Array, want: Record<string, unknown>): void {
  assert.ok(got, 'read');
  for (const k of ['vehicle_id', 'window_start', 'window_end', 'event_count', 'window_size_ms', 'window_advance_ms'] as const) assert.equal(got[k], want[k] ?? null, k);
  assert.deepEqual(features, featureVector(want, FEATURE_NAMES));
}

let seed = 7;
const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const randomRecord = (i: number): Record<string, unknown> => ({
  vehicle_id: `car-${'é'.repeat(i % 3)}${i}`,
  window_start: Math.floor(rand() * 2 ** 45) - 2 ** 44,
  window_end: Math.floor(rand() * 2 ** 52),
  event_count: Math.floor(rand() * 2 ** 31) - 2 ** 30,
  ...Object.fromEntries(FEATURE_NAMES.map((f, j) => [f, j % 17 === 0 ? -0 : (rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 4)])),
  window_size_ms: i % 2 === 0 ? null : Math.floor(rand() * 2 ** 40),
  window_advance_ms: i % 3 === 0 ? null : 10_000,
});

test('golden fixtures v1 and v2 read as the generic decoder reads them', async () => {
  for (const v of [1, 2]) {
    const writer = await loadSchemaFile(defaultSchemasDir(), 'features', v);
    const body = fixtureBody(`features.v${v}.bin.hex`);
    const reader = compileFeaturesReader(writer);
    assert.ok(reader, `v${v} compiles`);
    const features = new Float32Array(FEATURE_NAMES.length);
    sameAsGeneric(reader(body, features), features, await generic(writer, body));
  }
});

test('random records of both versions: header and features equal the generic decode', async () => {
  for (const v of [1, 2]) {
    const writer = await loadSchemaFile(defaultSchemasDir(), 'features', v);
    const type = avro.Type.forSchema(writer, { wrapUnions: false });
    const reader = compileFeaturesReader(writer)!;
    for (let i = 0; i < 200; i++) {
      const rec = randomRecord(i);
      if (v === 1) {
        delete rec.window_size_ms;
        delete rec.window_advance_ms;
      }
      const body = type.toBuffer(rec);
      const features = new Float32Array(FEATURE_NAMES.length);
      sameAsGeneric(reader(body, features), features, await generic(writer, body));
    }
  }
});

test('a writer in another field order, with float features and extra fields, reads by name', async () => {
  const v2 = (await loadSchemaFile(defaultSchemasDir(), 'features', 2)) as { fields: { name: string; type: unknown }[] };
  const fields = [...v2.fields].reverse().map((f) => (f.name.endsWith('_slope') ? { ...f, type: 'float' } : f));
  fields.splice(3, 0, { name: 'firmware', type: ['null', 'string'] }, { name: 'ok', type: 'boolean' }, { name: 'n', type: 'int' });
  const writer = { type: 'record', name: 'VehicleFeatures', namespace: 'io.pitwall.features', fields } as avro.Schema;
  const type = avro.Type.forSchema(writer, { wrapUnions: false });
  const reader = compileFeaturesReader(writer)!;
  assert.ok(reader);
  for (let i = 0; i < 50; i++) {
    const rec = { ...randomRecord(i), firmware: i % 2 ? 'v1.2' : null, ok: i % 2 === 0, n: -i };
    const body = type.toBuffer(rec);
    const features = new Float32Array(FEATURE_NAMES.length);
    sameAsGeneric(reader(body, features), features, await generic(writer, body));
  }
});

test('bodies it cannot read exactly read as undefined: the generic decoder then decides', async () => {
  const writer = await loadSchemaFile(defaultSchemasDir(), 'features', 2);
  const reader = compileFeaturesReader(writer)!;
  const body = fixtureBody('features.v2.bin.hex');
  const out = new Float32Array(FEATURE_NAMES.length);
  assert.equal(reader(body.subarray(0, body.length - 1), out), undefined, 'truncated');
  assert.equal(reader(Buffer.concat([body, Buffer.from([0])]), out), undefined, 'trailing data');
  assert.equal(reader(body.subarray(0, 3), out), undefined, 'cut in the header');
  // A union branch beyond the writer's: the last byte is window_advance_ms's branch 0 (null).
  const badBranch = avro.Type.forSchema(writer, { wrapUnions: false }).toBuffer(randomRecord(0));
  assert.equal(badBranch[badBranch.length - 1], 0);
  badBranch[badBranch.length - 1] = 0x04;
  assert.equal(reader(badBranch, out), undefined, 'union branch 2');
  // A long beyond avsc's safe range where window_start is: zigzag(2^53) as a varint.
  const type = avro.Type.forSchema(writer, { wrapUnions: false });
  const rec = type.fromBuffer(body) as Record<string, unknown>;
  const id = avro.Type.forSchema('string').toBuffer(rec.vehicle_id);
  const start = avro.Type.forSchema('long').toBuffer(rec.window_start);
  const huge = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  const tampered = Buffer.concat([id, huge, body.subarray(id.length + start.length)]);
  assert.throws(() => type.fromBuffer(tampered), /precision/);
  assert.equal(reader(tampered, out), undefined, 'unsafe long');
});

test('writer schemas it does not know compile to undefined', () => {
  const base = FEATURE_NAMES.map((name) => ({ name, type: 'double' }));
  const header = [
    { name: 'vehicle_id', type: 'string' },
    { name: 'window_start', type: 'long' },
    { name: 'window_end', type: 'long' },
    { name: 'event_count', type: 'int' },
  ];
  const rec = (fields: unknown[], name = 'io.pitwall.features.VehicleFeatures'): avro.Schema => ({ type: 'record', name, fields }) as avro.Schema;
  assert.ok(compileFeaturesReader(rec([...header, ...base])), 'the flat layout compiles');
  assert.equal(compileFeaturesReader(rec([...header, ...base.slice(1)])), undefined, 'a feature missing');
  assert.equal(compileFeaturesReader(rec(header.slice(1).concat(base))), undefined, 'vehicle_id missing');
  assert.equal(compileFeaturesReader(rec([...header, ...base, { name: 'tags', type: { type: 'array', items: 'string' } }])), undefined, 'an array field');
  assert.equal(compileFeaturesReader(rec([...header, ...base.slice(1), { name: FEATURE_NAMES[0], type: 'long' }])), undefined, 'a feature as long');
  assert.equal(compileFeaturesReader(rec([{ name: 'vehicle_id', type: 'bytes' }, ...header.slice(1), ...base])), undefined, 'vehicle_id as bytes');
  assert.equal(compileFeaturesReader('string'), undefined, 'not a record');
  // avsc refuses to resolve a record of another name (no alias): left to it.
  assert.equal(compileFeaturesReader(rec([...header, ...base], 'VehicleFeatures')), undefined, 'no namespace');
  assert.ok(compileFeaturesReader({ type: 'record', name: 'VehicleFeatures', namespace: 'io.pitwall.features', fields: [...header, ...base] }), 'namespace apart');
});
