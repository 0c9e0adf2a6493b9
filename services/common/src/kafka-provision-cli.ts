/**
 * Used by scripts/infra.sh after Kafka starts (not a service; reads process.env directly):
 *
 *   node kafka-provision-cli.js missing-users <secrets-dir>
 *       prints, one per line, the identities (admin and one per service) that cannot sign in with
 *       SCRAM-SHA-512 and the password in <secrets-dir>/<name>.password: infra.sh (re)creates them
 *       through the admin API (a data dir formatted before SCRAM, or a changed password file).
 *   node kafka-provision-cli.js acls <secrets-dir>
 *       creates every service's ACLs (services/common/src/kafka-acl.ts) for the topic and group
 *       names in the environment (TOPIC_*, *_GROUP_ID, ...; unset: the defaults). Idempotent.
 *
 * It signs in as the broker's own identity (SASL PLAIN, <secrets-dir>/broker.password, a super
 * user), which does not depend on SCRAM credentials. KAFKA_BROKERS: where (default 127.0.0.1:9092).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { aclBindings, grantAcls, KAFKA_ADMIN_IDENTITY, KAFKA_SERVICE_IDENTITIES, serviceGrants } from './kafka-acl.js';

const [command, secrets] = process.argv.slice(2);
if ((command !== 'missing-users' && command !== 'acls') || !secrets) {
  process.stderr.write('usage: kafka-provision-cli.js missing-users|acls <secrets-dir>\n');
  process.exit(2);
}
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092')
  .split(',')
  .map((b) => b.trim())
  .filter(Boolean);
const password = (name: string): string => readFileSync(path.join(secrets, `${name}.password`), 'utf8').trim();
// KAFKA_SSL_CA_FILE: the listener's CA (infra.sh passes $PITWALL_HOME/pki/kafka/ca.pem).
const caFile = process.env.KAFKA_SSL_CA_FILE;
const ssl = caFile ? { ssl: { ca: [readFileSync(caFile, 'utf8')], rejectUnauthorized: true } } : {};

async function canSignIn(username: string): Promise<boolean> {
  const admin = new Kafka({
    clientId: 'pitwall-provision',
    brokers,
    ...ssl,
    sasl: { mechanism: 'scram-sha-512', username, password: password(username) },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch (err) {
    if ((err as Error).name === 'KafkaJSSASLAuthenticationError') return false;
    throw err;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

if (command === 'missing-users') {
  for (const user of [KAFKA_ADMIN_IDENTITY, ...KAFKA_SERVICE_IDENTITIES]) {
    if (!(await canSignIn(user))) process.stdout.write(`${user}\n`);
  }
} else {
  const admin = new Kafka({
    clientId: 'pitwall-provision',
    brokers,
    ...ssl,
    sasl: { mechanism: 'plain', username: 'broker', password: password('broker') },
    logLevel: logLevel.NOTHING,
    retry: { retries: 5 },
  }).admin();
  await admin.connect();
  try {
    const bindings = KAFKA_SERVICE_IDENTITIES.flatMap((s) => aclBindings(s, serviceGrants(s, process.env)));
    await grantAcls(admin, bindings);
    process.stdout.write(`${bindings.length} ACL bindings for ${KAFKA_SERVICE_IDENTITIES.join(', ')}\n`);
  } finally {
    await admin.disconnect();
  }
}
