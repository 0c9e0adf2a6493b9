/**
 * The registry's deploy step: `npm run schemas -- deploy` registers every version of every topic's
 * schema (schema-deploy.ts) as the write identity in SCHEMA_REGISTRY_USERNAME and
 * SCHEMA_REGISTRY_PASSWORD[_FILE], for the topic names in TOPIC_* (the services' own variables).
 * `check` only looks each one up, anonymously unless credentials are given: what a service does at
 * start. scripts/infra.sh runs deploy after the registry starts.
 */
import { configReader, readCommonConfig } from './config.js';
import { runCliIfMain } from './lifecycle.js';
import { createSchemaStore, defaultSchemasDir, loadSchemaFile } from './registry.js';
import { deploySchemas, schemaVersions, TOPIC_RECORDS } from './schema-deploy.js';

const USAGE = `usage: npm run schemas -- deploy|check
  deploy   register every schema version under its topic's subject (needs SCHEMA_REGISTRY_USERNAME
           and SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE: a write identity)
  check    look every schema version up; exit 1 if one is missing
Topics: TOPIC_TELEMETRY, TOPIC_FEATURES, ... (docs/configuration.md); registry: SCHEMA_REGISTRY_URL.`;

runCliIfMain(import.meta.url, 'schemas', async (argv) => {
  const command = argv[0];
  if (argv.length !== 1 || (command !== 'deploy' && command !== 'check')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const c = configReader(process.env);
  const config = c.done(readCommonConfig(c, 'schemas'));
  if (command === 'deploy' && !config.registryCredentials) {
    process.stderr.write('schemas deploy: SCHEMA_REGISTRY_USERNAME is not set: the registry accepts writes only from its deploy identity\n');
    return 2;
  }
  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  const schemasDir = defaultSchemasDir();
  if (command === 'deploy') {
    for (const s of await deploySchemas(store, config.topics, schemasDir)) {
      process.stdout.write(`${s.subject}: ${[...s.ids].map(([v, id]) => `${s.record} v${v} = id ${id}`).join(', ')}\n`);
    }
    return 0;
  }
  let missing = 0;
  for (const [key, record] of Object.entries(TOPIC_RECORDS) as [keyof typeof TOPIC_RECORDS, string][]) {
    const subject = `${config.topics[key]}-value`;
    for (const v of await schemaVersions(schemasDir, record)) {
      const id = await store.lookup(subject, await loadSchemaFile(schemasDir, record, v));
      if (id === undefined) missing++;
      process.stdout.write(`${subject}: ${record} v${v} ${id === undefined ? 'MISSING' : `= id ${id}`}\n`);
    }
  }
  return missing === 0 ? 0 : 1;
});
