import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import avro from 'avsc';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAvroCodec, createSchemaStore, createTopicCodec, defaultSchemasDir, loadSchemaFile, type SchemaStore } from '../src/registry.js';
import { deploySchemas, schemaVersions, TOPIC_RECORDS } from '../src/schema-deploy.js';
import { PitwallError } from '../src/errors.js';
import { configReader, readRegistryCredentials } from '../src/config.js';
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
      // As a registry does: the same schema again in a subject is the version it already has.
      if (!subjects.get(subject)?.includes(id)) subjects.set(subject, [...(subjects.get(subject) ?? []), id]);
      return id;
    },
    async lookup(subject, schema) {
      const json = JSON.stringify(schema);
      return subjects.get(subject)?.find((id) => JSON.stringify(schemas[id - 1]) === json);
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

test('features v1 records decode with the v2 reader: no window definition named (null)', async () => {
  const store = memoryStore();
  const v1 = await createAvroCodec<Record<string, unknown>>(store, 'f-value', await loadSchemaFile(defaultSchemasDir(), 'features', 1));
  const v2 = await createAvroCodec<Record<string, unknown>>(store, 'f-value', await loadSchemaFile(defaultSchemasDir(), 'features', 2));
  const golden = JSON.parse(readFileSync(`${fixturesDir}features.v1.json`, 'utf8'));
  const decoded = await v2.decode(v1.encode(golden));
  assert.deepEqual(JSON.parse(JSON.stringify(decoded)), { ...golden, window_size_ms: null, window_advance_ms: null });
  const own = await v2.decode(v2.encode({ ...golden, window_size_ms: 120_000, window_advance_ms: 120_000 }));
  assert.equal(own.window_size_ms, 120_000);
  // And the other way round: a v1 reader (an older scorer) skips the new fields.
  assert.deepEqual(JSON.parse(JSON.stringify(await v1.decode(v2.encode({ ...golden, window_size_ms: 120_000, window_advance_ms: 120_000 })))), golden);
});

test('decode refuses a message without the Confluent framing', async () => {
  const codec = await createAvroCodec(memoryStore(), 's', { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
  await assert.rejects(codec.decode(Buffer.from([1, 2])), (e: unknown) => e instanceof InvalidInputError && e.reason === 'avro.framing');
});

test('encoded records are framed, independent of each other, and of any size', async () => {
  const codec = await createAvroCodec<{ s: string }>(memoryStore(), 's', { type: 'record', name: 'R', fields: [{ name: 's', type: 'string' }] });
  const small = codec.encode({ s: 'a' });
  const next = codec.encode({ s: 'b' });
  const large = codec.encode({ s: 'x'.repeat(100_000) }); // larger than the reused encode buffer
  const after = codec.encode({ s: 'c' });
  assert.equal(small[0], 0);
  assert.equal(small.readUInt32BE(1), codec.schemaId);
  assert.equal((await codec.decode(small)).s, 'a', 'a later encode must not overwrite an earlier record');
  assert.equal((await codec.decode(next)).s, 'b');
  assert.equal((await codec.decode(large)).s.length, 100_000);
  assert.equal((await codec.decode(after)).s, 'c');
});

test('a reader decodes an older writer version (schema evolution)', async () => {
  const store = memoryStore();
  const v1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] } as avro.Schema;
  const v2 = {
    type: 'record',
    name: 'R',
    fields: [
      { name: 'a', type: 'int' },
      { name: 'b', type: 'boolean', default: true },
    ],
  } as avro.Schema;
  const writer = await createAvroCodec<{ a: number }>(store, 's', v1);
  const reader = await createAvroCodec<{ a: number; b: boolean }>(store, 's', v2);
  assert.notEqual(writer.schemaId, reader.schemaId);
  assert.deepEqual({ ...(await reader.decode(writer.encode({ a: 7 }))) }, { a: 7, b: true });
});

test('a service codec only looks its schema up: before the deploy step it fails and registers nothing', async () => {
  const store = memoryStore();
  await assert.rejects(
    createTopicCodec(store, 'vehicle.telemetry', 'telemetry', 2),
    (e: unknown) => e instanceof PitwallError && e.reason === 'registry.unregistered' && !e.retriable && /npm run schemas -- deploy/.test(e.message),
  );
  assert.equal(store.subjects.size, 0);
});

test('the deploy step registers every version file of every topic record; services then find theirs', async () => {
  const store = memoryStore();
  const topics = { telemetry: 't', receipts: 'r', features: 'f', scores: 's', alerts: 'a', incidentCommands: 'c', incidents: 'i' };
  const deployed = await deploySchemas(store, topics, defaultSchemasDir());
  assert.deepEqual(deployed.map((d) => d.subject).sort(), ['a-value', 'c-value', 'f-value', 'i-value', 'r-value', 's-value', 't-value']);
  assert.deepEqual(await schemaVersions(defaultSchemasDir(), 'telemetry'), [1, 2]);
  assert.deepEqual([...deployed.find((d) => d.subject === 't-value')!.ids.keys()], [1, 2]);
  for (const [key, record] of Object.entries(TOPIC_RECORDS) as [keyof typeof topics, string][]) {
    for (const v of await schemaVersions(defaultSchemasDir(), record)) {
      const codec = await createTopicCodec(store, topics[key], record, v);
      assert.equal(codec.schemaId, deployed.find((d) => d.record === record)!.ids.get(v));
    }
  }
  // Idempotent: a second deploy adds no version.
  const before = JSON.stringify([...store.subjects]);
  await deploySchemas(store, topics, defaultSchemasDir());
  assert.equal(JSON.stringify([...store.subjects]), before);
});

test('registry credentials: optional; a password without a user, or both password forms, name the variable', () => {
  const read = (env: Record<string, string>) => {
    const c = configReader(env);
    return c.done({ v: readRegistryCredentials(c) }).v;
  };
  assert.equal(read({}), undefined);
  assert.deepEqual(read({ SCHEMA_REGISTRY_USERNAME: 'admin', SCHEMA_REGISTRY_PASSWORD: 'pw' }), { username: 'admin', password: 'pw' });
  assert.throws(() => read({ SCHEMA_REGISTRY_PASSWORD: 'pw' }), /SCHEMA_REGISTRY_USERNAME/);
  assert.throws(() => read({ SCHEMA_REGISTRY_USERNAME: 'admin' }), /SCHEMA_REGISTRY_PASSWORD/);
  assert.throws(() => read({ SCHEMA_REGISTRY_USERNAME: 'admin', SCHEMA_REGISTRY_PASSWORD: 'a', SCHEMA_REGISTRY_PASSWORD_FILE: '/etc/hostname' }), /not both/);
});

/** A local HTTP server answering each request with the next of `answers` (the last repeats); counts requests. */
async function scriptedRegistry(answers: Array<[number, unknown]>): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = createServer((req, res) => {
    const [status, body] = answers[Math.min(n++, answers.length - 1)]!;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/apis/ccompat/v7`, requests: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

const fast = { deadlineMs: 2_000, initialMs: 10 };

test('registry calls retry 5xx and 429 answers until an answer comes', async () => {
  const reg = await scriptedRegistry([
    [503, { message: 'starting' }],
    [429, { message: 'busy' }],
    [500, { message: 'oops' }],
    [200, { id: 7 }],
  ]);
  try {
    assert.equal(await createSchemaStore(reg.url, undefined, fast).lookup('t-value', { type: 'string' }), 7);
    assert.equal(reg.requests(), 4);
  } finally {
    await reg.close();
  }
});

test('registry answers that are not transient are not retried: 404 is "not registered", 401 a refusal', async () => {
  const missing = await scriptedRegistry([[404, { error_code: 40403 }]]);
  const denied = await scriptedRegistry([[401, { message: 'no' }]]);
  try {
    assert.equal(await createSchemaStore(missing.url, undefined, fast).lookup('t-value', { type: 'string' }), undefined);
    await assert.rejects(createSchemaStore(denied.url, undefined, fast).register('t-value', { type: 'string' }), (e: PitwallError) => e.reason === 'registry.forbidden' && !e.retriable);
    assert.deepEqual([missing.requests(), denied.requests()], [1, 1]);
  } finally {
    await missing.close();
    await denied.close();
  }
});

test('a registry that stays unavailable fails the call after the deadline, naming it', async () => {
  const down = await scriptedRegistry([[503, { message: 'down' }]]);
  try {
    // A deadline long enough for several 10-40 ms backoffs even on a loaded machine (300 ms once
    // saw a single try while other builds held both cores); the test asserts retries, not speed.
    await assert.rejects(createSchemaStore(down.url, undefined, { deadlineMs: 2_000, initialMs: 10 }).lookup('t-value', { type: 'string' }), (e: PitwallError) => {
      assert.equal(e.reason, 'registry.lookup');
      assert.ok(e.retriable);
      assert.match(e.message, /HTTP 503/);
      return true;
    });
    assert.ok(down.requests() >= 3, `${down.requests()} tries`);
  } finally {
    await down.close();
  }
  // Nobody listening: a connection error, retried the same way, then thrown with the registry's address.
  const { url } = down;
  await assert.rejects(createSchemaStore(url, undefined, { deadlineMs: 200, initialMs: 10 }).getSchema(1), (e: PitwallError) => e.reason === 'registry.get' && e.message.includes(url));
});
