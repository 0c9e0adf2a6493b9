/**
 * Kafka is secure by default (scripts/infra.sh, infra/kafka/server.properties): these are attacks on
 * the real broker. A client without credentials, or with a wrong password, gets nothing; a service's
 * identity can do what its ACLs (services/common/src/kafka-acl.ts) allow and nothing else. Each test
 * also does the allowed thing first, so it cannot pass against a broker that refuses everyone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { grantServiceAcls, INFRA, isolatedEnv, kafkaClientConfig, kafkaIdentityEnv, runId } from './support/stack.js';

const id = runId();
const env = isolatedEnv(id);
const client = (extra: Partial<KafkaConfig>): Kafka =>
  new Kafka({ clientId: `e2e-attacker-${id}`, brokers: [INFRA.kafka], logLevel: logLevel.NOTHING, connectionTimeout: 3_000, retry: { retries: 1, initialRetryTime: 100 }, ...extra });
const as = (user: string): Kafka => client(kafkaClientConfig(INFRA.kafka, user));
/** The listener's TLS settings without any credentials: what an attacker on the network can do. */
const tls = (): Partial<KafkaConfig> => ({ ssl: kafkaClientConfig(INFRA.kafka).ssl });
const admin = as('admin');

/** The error, or one it wraps, is the broker refusing authorization (not a network or test failure). */
function refused(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    const seen: string[] = [];
    type E = { name?: string; type?: string; message?: string; originalError?: unknown; cause?: unknown; errors?: unknown[] };
    const queue: unknown[] = [err];
    while (queue.length > 0) {
      const e = queue.shift() as E | undefined;
      if (!e || typeof e !== 'object') continue;
      seen.push(`${e.name}: ${e.type ?? ''} ${e.message ?? ''}`);
      if (pattern.test(`${e.name} ${e.type ?? ''} ${e.message ?? ''}`)) return true;
      queue.push(e.originalError, e.cause, ...(Array.isArray(e.errors) ? e.errors : []));
    }
    assert.fail(`expected a refusal matching ${pattern}, got ${seen.join(' <- ')}`);
  };
}
const AUTHZ = /AUTHORIZATION_FAILED|Not authorized/i;
/**
 * A group the identity may not use: the broker answers FindCoordinator with GROUP_AUTHORIZATION_FAILED,
 * which kafkajs reports as "Failed to find group coordinator" (its broker pool drops the cause). The
 * same identity finds the coordinator of its own group just before, so here it means the refusal.
 */
const GROUP_AUTHZ = /AUTHORIZATION_FAILED|Not authorized|KafkaJSGroupCoordinatorNotFound/i;

async function describe(kafka: Kafka): Promise<number> {
  const a = kafka.admin();
  await a.connect();
  try {
    return (await a.describeCluster()).brokers.length;
  } finally {
    await a.disconnect();
  }
}

/** Reads one message of `topic` with a consumer in `groupId`; rejects with the consumer's crash. */
async function readOne(kafka: Kafka, groupId: string, topic: string, timeoutMs = 20_000): Promise<string> {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 1 } });
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message on ${topic} within ${timeoutMs} ms`)), timeoutMs);
      consumer.on(consumer.events.CRASH, (e) => {
        clearTimeout(timer);
        reject(e.payload.error);
      });
      consumer
        .connect()
        .then(() => consumer.subscribe({ topic, fromBeginning: true }))
        .then(() =>
          consumer.run({
            eachMessage: async ({ message }) => {
              clearTimeout(timer);
              resolve(message.value?.toString() ?? '');
            },
          }),
        )
        .catch((err: Error) => {
          clearTimeout(timer);
          reject(err);
        });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

test('a client without credentials is refused', async () => {
  assert.equal(await describe(admin), 1, 'the admin identity signs in');
  await assert.rejects(describe(client({})), (err: unknown) => err instanceof Error);
  // Over TLS without SASL: the broker waits for a SASL handshake and closes the connection.
  await assert.rejects(describe(client(tls())), (err: unknown) => err instanceof Error);
  // And it cannot sneak in over SASL with no password either.
  await assert.rejects(describe(client({ ...tls(), sasl: { mechanism: 'scram-sha-512', username: 'admin', password: '' } })), refused(/SASL|Authentication/i));
});

test('a wrong password is refused; the right one signs in', async () => {
  assert.equal(await describe(as('ingest')), 1);
  await assert.rejects(
    describe(client({ ...tls(), sasl: { mechanism: 'scram-sha-512', username: 'ingest', password: 'not-the-password' } })),
    refused(/KafkaJSSASLAuthenticationError|Authentication failed/i),
  );
  await assert.rejects(describe(client({ ...tls(), sasl: { mechanism: 'scram-sha-512', username: 'nobody', password: 'guess' } })), refused(/KafkaJSSASLAuthenticationError|Authentication failed/i));
  // The broker's own PLAIN identity is not guessable either.
  await assert.rejects(describe(client({ ...tls(), sasl: { mechanism: 'plain', username: 'broker', password: 'broker' } })), refused(/KafkaJSSASLAuthenticationError|Authentication failed/i));
});

test("ingest's identity writes its own topics and nothing else", async () => {
  const a = admin.admin();
  await a.connect();
  await a.createTopics({
    topics: [
      { topic: env.TOPIC_TELEMETRY, numPartitions: 1 },
      { topic: env.TOPIC_INCIDENTS, numPartitions: 1 },
    ],
  });
  await a.disconnect();
  await grantServiceAcls('ingest', { KAFKA_BROKERS: INFRA.kafka, ...env });
  const producer = as('ingest').producer({ allowAutoTopicCreation: false, retry: { retries: 1 } });
  await producer.connect();
  try {
    await producer.send({ topic: env.TOPIC_TELEMETRY, messages: [{ key: 'car-1', value: 'allowed' }] });
    await assert.rejects(producer.send({ topic: env.TOPIC_INCIDENTS, messages: [{ key: 'inc-1', value: 'forged incident' }] }), refused(AUTHZ));
    await assert.rejects(producer.send({ topic: 'maintenance.incidents', messages: [{ key: 'inc-1', value: 'forged incident' }] }), refused(AUTHZ));
  } finally {
    await producer.disconnect();
  }
  // Nor may it grant itself more, or create topics outside its own.
  const ia = as('ingest').admin();
  await ia.connect();
  try {
    await assert.rejects(ia.createTopics({ topics: [{ topic: `e2e.${id}.ingest-made-this`, numPartitions: 1 }] }), refused(AUTHZ));
    await assert.rejects(
      ia.createAcls({
        // TOPIC, LITERAL, ALL, ALLOW (kafkajs's enum values)
        acl: [{ resourceType: 2, resourceName: env.TOPIC_INCIDENTS, resourcePatternType: 3, principal: 'User:ingest', host: '*', operation: 2, permissionType: 3 }] as never,
      }),
      refused(AUTHZ),
    );
  } finally {
    await ia.disconnect();
  }
});

test("a service cannot read another service's topic or join its consumer group", async () => {
  const a = admin.admin();
  await a.connect();
  await a
    .createTopics({
      topics: [
        { topic: env.TOPIC_FEATURES, numPartitions: 1 },
        { topic: env.TOPIC_INCIDENTS, numPartitions: 1 },
      ],
    })
    .catch(() => undefined);
  await a.disconnect();
  const producer = admin.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic: env.TOPIC_INCIDENTS, messages: [{ key: 'inc-1', value: 'incident' }] });
  await producer.send({ topic: env.TOPIC_FEATURES, messages: [{ key: 'car-1', value: 'features' }] });
  await producer.disconnect();
  await grantServiceAcls('dispatch', { KAFKA_BROKERS: INFRA.kafka, ...env, ...kafkaIdentityEnv('dispatch') });
  await grantServiceAcls('scoring', { KAFKA_BROKERS: INFRA.kafka, ...env, ...kafkaIdentityEnv('scoring') });

  // Allowed: dispatch reads the incidents in its own group.
  assert.equal(await readOne(as('dispatch'), env.DISPATCH_GROUP_ID, env.TOPIC_INCIDENTS), 'incident');
  // Refused: dispatch reading scoring's input, in its own group ...
  await assert.rejects(readOne(as('dispatch'), `${env.DISPATCH_GROUP_ID}.snoop`, env.TOPIC_FEATURES), refused(AUTHZ));
  // ... or joining scoring's group, even for a topic it may read ...
  await assert.rejects(readOne(as('dispatch'), env.SCORING_GROUP_ID, env.TOPIC_INCIDENTS), refused(GROUP_AUTHZ));
  // ... or reading scoring's committed offsets.
  const da = as('dispatch').admin();
  await da.connect();
  try {
    await assert.rejects(da.fetchOffsets({ groupId: env.SCORING_GROUP_ID, topics: [env.TOPIC_FEATURES] }), refused(GROUP_AUTHZ));
  } finally {
    await da.disconnect();
  }
  // Scoring itself reads its input in its group (the ACLs above are what refused dispatch).
  assert.equal(await readOne(as('scoring'), env.SCORING_GROUP_ID, env.TOPIC_FEATURES), 'features');
});
