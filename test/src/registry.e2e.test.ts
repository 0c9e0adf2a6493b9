/**
 * The schema store against the real registry (Apicurio, Confluent API): several services register
 * the same subject in any order, a compatible new version is accepted under BACKWARD, and an
 * incompatible one is refused with a non-retriable reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAvroCodec, createSchemaStore, defaultSchemasDir, loadSchemaFile, PitwallError } from '@pitwall/common';
import { INFRA, runId } from './support/stack.js';

test('registering a subject from several services, evolving it, and refusing a breaking change', async () => {
  const subject = `e2e.${runId()}.registry-value`;
  const v1 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1);
  const v2 = await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2);
  // A reader registers first, without touching the subject's compatibility...
  const reader = await createAvroCodec(createSchemaStore(INFRA.registry), subject, v1);
  // ...then a writer sets BACKWARD and registers, then another instance registers the same schema.
  const writer = await createAvroCodec(createSchemaStore(INFRA.registry), subject, v1, { compatibility: 'BACKWARD' });
  const again = await createAvroCodec(createSchemaStore(INFRA.registry), subject, v1, { compatibility: 'BACKWARD' });
  assert.equal(reader.schemaId, writer.schemaId);
  assert.equal(again.schemaId, writer.schemaId);
  const evolved = await createAvroCodec(createSchemaStore(INFRA.registry), subject, v2, { compatibility: 'BACKWARD' });
  assert.notEqual(evolved.schemaId, writer.schemaId);
  const breaking = structuredClone(v2) as { fields: unknown[] };
  breaking.fields.push({ name: 'vin', type: 'string' });
  await assert.rejects(
    createSchemaStore(INFRA.registry).register(subject, breaking as never),
    (e: unknown) => e instanceof PitwallError && e.reason === 'registry.incompatible' && !e.retriable,
  );
});
