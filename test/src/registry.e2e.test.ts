/**
 * The schema store against the real registry (Apicurio, Confluent API, as scripts/infra.sh starts
 * it): the deploy identity registers a subject in any order, a compatible new version is accepted
 * under BACKWARD, and an incompatible one is refused with a non-retriable reason. Anyone else, a
 * service included, can only read: every write without the deploy identity is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAvroCodec, createSchemaStore, createTopicCodec, defaultSchemasDir, deploySchemas, loadSchemaFile, PitwallError } from '@pitwall/common';
import { adminSchemaStore, INFRA, runId } from './support/stack.js';

test('registering a subject from several services, evolving it, and refusing a breaking change', async () => {
  const subject = `e2e.${runId()}.registry-value`;
  const v1 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1);
  const v2 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2);
  // A reader registers first, without touching the subject's compatibility...
  const reader = await createAvroCodec(adminSchemaStore(), subject, v1);
  // ...then a writer sets BACKWARD and registers, then another instance registers the same schema.
  const writer = await createAvroCodec(adminSchemaStore(), subject, v1, { compatibility: 'BACKWARD' });
  const again = await createAvroCodec(adminSchemaStore(), subject, v1, { compatibility: 'BACKWARD' });
  assert.equal(reader.schemaId, writer.schemaId);
  assert.equal(again.schemaId, writer.schemaId);
  const evolved = await createAvroCodec(adminSchemaStore(), subject, v2, { compatibility: 'BACKWARD' });
  assert.notEqual(evolved.schemaId, writer.schemaId);
  const breaking = structuredClone(v2) as { fields: unknown[] };
  breaking.fields.push({ name: 'vin', type: 'string' });
  await assert.rejects(adminSchemaStore().register(subject, breaking as never), (e: unknown) => e instanceof PitwallError && e.reason === 'registry.incompatible' && !e.retriable);
});

const CONTENT = 'application/vnd.schemaregistry.v1+json';
const call = (method: string, p: string, body?: unknown, auth?: string): Promise<Response> =>
  fetch(`${INFRA.registry}${p}`, {
    method,
    headers: { 'content-type': CONTENT, ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

test('the registry refuses every unauthenticated or wrongly signed-in write and still serves reads', async () => {
  const subject = `e2e.${runId()}.attack-value`;
  const telemetry = 'vehicle.telemetry-value'; // deployed by scripts/infra.sh
  const schema = JSON.stringify({ type: 'record', name: 'Evil', fields: [{ name: 'x', type: 'string' }] });
  const refused: [string, Promise<Response>][] = [
    ['register a new subject', call('POST', `/subjects/${subject}/versions`, { schema })],
    ['register a version of a deployed subject', call('POST', `/subjects/${telemetry}/versions`, { schema })],
    ['set a subject to compatibility NONE', call('PUT', `/config/${telemetry}`, { compatibility: 'NONE' })],
    ['set the global compatibility to NONE', call('PUT', '/config', { compatibility: 'NONE' })],
    ['delete a deployed subject', call('DELETE', `/subjects/${telemetry}`)],
    ['register with a wrong admin password', call('POST', `/subjects/${subject}/versions`, { schema }, 'admin:not-the-password')],
    ['register as an unknown user', call('POST', `/subjects/${subject}/versions`, { schema }, 'ingest:ingest')],
    [
      'create an artifact through the core v3 API',
      fetch(INFRA.registry.replace(/\/apis\/.*$/, '/apis/registry/v3/groups/default/artifacts'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ artifactId: subject, artifactType: 'AVRO', firstVersion: { content: { content: schema, contentType: 'application/json' } } }),
      }),
    ],
  ];
  for (const [what, res] of refused) assert.equal((await res).status, 401, `${what} must be refused`);
  // Nothing changed: the subject does not exist and the deployed one keeps BACKWARD and its versions.
  assert.equal((await call('GET', `/subjects/${subject}/versions`)).status, 404);
  assert.deepEqual(await (await call('GET', `/config/${telemetry}`)).json(), { compatibilityLevel: 'BACKWARD' });
  // Reads stay open: what every service does at start.
  assert.equal((await call('GET', '/subjects')).status, 200);
  const codec = await createTopicCodec(createSchemaStore(INFRA.registry), 'vehicle.telemetry', 'telemetry', 2);
  assert.ok(codec.schemaId > 0);
});

test('a service cannot register or change compatibility through the schema store, and says why', async () => {
  const subject = `e2e.${runId()}.service-value`;
  const v1 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1);
  const anonymous = createSchemaStore(INFRA.registry);
  await assert.rejects(anonymous.register(subject, v1), (e: unknown) => e instanceof PitwallError && e.reason === 'registry.forbidden' && !e.retriable && /SCHEMA_REGISTRY_USERNAME/.test(e.message));
  await assert.rejects(anonymous.setCompatibility(subject, 'NONE'), (e: unknown) => e instanceof PitwallError && e.reason === 'registry.forbidden');
  // A service's codec on a topic the deploy step has not covered: refused at start, naming the fix.
  await assert.rejects(
    createTopicCodec(anonymous, `e2e.${runId()}.undeployed`, 'telemetry', 2),
    (e: unknown) => e instanceof PitwallError && e.reason === 'registry.unregistered' && /npm run schemas -- deploy/.test(e.message),
  );
});

test('two deploy steps at once (two replicas rolling out) both succeed with the same ids', async () => {
  const id = runId();
  const topics = {
    telemetry: `e2e.${id}.t`,
    receipts: `e2e.${id}.r`,
    features: `e2e.${id}.f`,
    scores: `e2e.${id}.s`,
    alerts: `e2e.${id}.a`,
    incidentCommands: `e2e.${id}.c`,
    incidents: `e2e.${id}.i`,
  };
  const [a, b] = await Promise.all([deploySchemas(adminSchemaStore(), topics, defaultSchemasDir()), deploySchemas(adminSchemaStore(), topics, defaultSchemasDir())]);
  const ids = (d: typeof a) => d.map((s) => `${s.subject}:${[...s.ids].join(';')}`).sort();
  assert.deepEqual(ids(a), ids(b));
  for (const s of a) assert.deepEqual(await (await call('GET', `/config/${s.subject}`)).json(), { compatibilityLevel: 'BACKWARD' });
});
