/**
 * The deploy step of the schema registry: the only writer. It registers every version file of
 * schemas/<record>/ (v1, v2, ... in order) under each topic's subject (`<topic>-value`) with
 * BACKWARD compatibility, so a new version that old readers cannot read is refused here, before any
 * service runs it. Services only look their schemas up (createTopicCodec). Idempotent: registering
 * a schema the subject already has returns its id.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { TopicNames } from './config.js';
import { createAvroCodec, loadSchemaFile, type Compatibility, type SchemaStore } from './registry.js';

/** Which record each Avro topic carries (model.updates and model.shadow are JSON; dead letters keep the raw payload). */
export const TOPIC_RECORDS = Object.freeze({
  telemetry: 'telemetry',
  receipts: 'receipt',
  features: 'features',
  scores: 'score',
  alerts: 'alert',
  incidentCommands: 'incident-command',
  incidents: 'incident',
} as const satisfies Partial<Record<keyof TopicNames, string>>);

export const DEPLOY_COMPATIBILITY: Compatibility = 'BACKWARD';

/** The version numbers of schemas/<record>/v<N>.avsc, ascending. */
export async function schemaVersions(schemasDir: string, record: string): Promise<number[]> {
  const files = await readdir(path.join(schemasDir, record));
  return files
    .map((f) => /^v(\d+)\.avsc$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export interface DeployedSubject {
  readonly subject: string;
  readonly record: string;
  /** Version file -> registry id. */
  readonly ids: ReadonlyMap<number, number>;
}

/** Registers every topic's schemas; `topics` are the names the services are configured with. */
export async function deploySchemas(store: SchemaStore, topics: Pick<TopicNames, keyof typeof TOPIC_RECORDS>, schemasDir: string): Promise<DeployedSubject[]> {
  const out: DeployedSubject[] = [];
  for (const [key, record] of Object.entries(TOPIC_RECORDS) as [keyof typeof TOPIC_RECORDS, string][]) {
    const subject = `${topics[key]}-value`;
    const ids = new Map<number, number>();
    for (const version of await schemaVersions(schemasDir, record)) {
      const codec = await createAvroCodec(store, subject, await loadSchemaFile(schemasDir, record, version), { mode: 'register', compatibility: DEPLOY_COMPATIBILITY });
      ids.set(version, codec.schemaId);
    }
    out.push({ subject, record, ids });
  }
  return out;
}
