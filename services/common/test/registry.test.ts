import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import avro from 'avsc';
import { createAvroCodec, defaultSchemasDir, loadSchemaFile, type SchemaStore } from '../src/registry.js';
import { InvalidInputError } from '../src/errors.js';

/** An in-memory registry for the pure codec logic; integration tests use the real Apicurio. */
function memoryStore(): SchemaStore & { subjects: Map<string, number[]> } {
  const schemas: avro.Schema[] = [];
  const subjects = new Map<string, number[]>();
  return {
    subjects,
    async setCompatibility() {},
    async register(subject, schema) {
      const json = JSON.stringify(schema);
      let id = schemas.findIndex((s) => JSON.stringify(s) === json) + 1;
      if (id === 0) id = schemas.push(schema);
      subjects.set(subject, [...(subjects.get(subject) ?? []), id]);
      return id;
    },
    async getSchema(id) {
      const s = schemas[id - 1];
      if (!s) throw new Error('no such schema');
      return s;
    },
  };
}

// Golden fixtures: schemas/fixtures/<record>.v<N>.json must keep round-tripping through vN.avsc.
const fixturesDir = `${defaultSchemasDir()}fixtures/`;
for (const file of readdirSync(fixturesDir).filter((f) => f.endsWith('.json'))) {
  test(`golden fixture ${file} round-trips through the wire format`, async () => {
    const [, record, version] = /^([\w-]+)\.v(\d+)\.json$/.exec(file)!;
    const schema = await loadSchemaFile(defaultSchemasDir(), record!, Number(version));
    const codec = await createAvroCodec<Record<string, unknown>>(memoryStore(), `${record}-value`, schema);
    const value = JSON.parse(readFileSync(fixturesDir + file, 'utf8'));
    const buf = codec.encode(value);
    assert.equal(buf[0], 0, 'magic byte');
    assert.equal(buf.readUInt32BE(1), codec.schemaId);
    assert.deepEqual(JSON.parse(JSON.stringify(await codec.decode(buf))), value);
    const golden = readFileSync(fixturesDir + file.replace(/\.json$/, '.bin.hex'), 'utf8').trim();
    assert.equal(buf.subarray(5).toString('hex'), golden, 'Avro body bytes changed: the wire format is not compatible');
  });
}

test('telemetry v1 records decode with the v2 reader: ignition_on is null (not reported)', async () => {
  const store = memoryStore();
  const v1 = await createAvroCodec<Record<string, unknown>>(store, 't-value', await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1));
  const v2 = await createAvroCodec<Record<string, unknown>>(store, 't-value', await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  const golden = JSON.parse(readFileSync(`${fixturesDir}telemetry.v1.json`, 'utf8'));
  const decoded = await v2.decode(v1.encode(golden));
  assert.deepEqual(JSON.parse(JSON.stringify(decoded)), { ...golden, ignition_on: null });
  const own = await v2.decode(v2.encode({ ...golden, ignition_on: false }));
  assert.equal(own.ignition_on, false);
});

test('decode refuses a message without the Confluent framing', async () => {
  const codec = await createAvroCodec(memoryStore(), 's', { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
  await assert.rejects(codec.decode(Buffer.from([1, 2])), (e: unknown) => e instanceof InvalidInputError && e.reason === 'avro.framing');
});

test('a reader decodes an older writer version (schema evolution)', async () => {
  const store = memoryStore();
  const v1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] } as avro.Schema;
  const v2 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }, { name: 'b', type: 'boolean', default: true }] } as avro.Schema;
  const writer = await createAvroCodec<{ a: number }>(store, 's', v1);
  const reader = await createAvroCodec<{ a: number; b: boolean }>(store, 's', v2);
  assert.notEqual(writer.schemaId, reader.schemaId);
  assert.deepEqual({ ...(await reader.decode(writer.encode({ a: 7 }))) }, { a: 7, b: true });
});
