/**
 * provisionTopics on the real broker, as services use it at start: several processes at once
 * creating the same brand-new topics. No call may fail, and each returns only when the broker
 * knows every partition of the topics with a leader. A KRaft broker answers
 * UNKNOWN_TOPIC_OR_PARTITION for a moment after its controller created a topic; kafkajs's own wait
 * for leaders gives up on that answer, which made a service fail to start on a fresh cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { provisionTopics } from '@pitwall/common';
import { INFRA, runId } from './support/stack.js';

test('concurrent provisionTopics of fresh topics: no caller fails, each sees every partition led and can produce', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const kafka = new Kafka({ clientId: `e2e-${id}`, brokers: [INFRA.kafka], logLevel: logLevel.NOTHING });
  const ROUNDS = 3;
  const CALLERS = 4;
  const PARTITIONS = 6;
  const created: string[] = [];
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const topics = [`e2e.${id}.topics.${round}.a`, `e2e.${id}.topics.${round}.b`, `e2e.${id}.topics.${round}.c`];
      created.push(...topics);
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, caller) => {
          await provisionTopics(kafka, topics.map((topic) => ({ topic })), { partitions: PARTITIONS });
          // Straight away, from a fresh client: the metadata names a leader for every partition.
          const own = kafka.admin();
          await own.connect();
          try {
            const { topics: meta } = await own.fetchTopicMetadata({ topics });
            assert.deepEqual(
              meta.map((m) => [m.name, m.partitions.filter((p) => p.leader >= 0).length]).sort(),
              topics.map((topic) => [topic, PARTITIONS]),
            );
          } finally {
            await own.disconnect();
          }
          // A producer as the services configure it (client retries, no auto-creation).
          const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
          await producer.connect();
          try {
            await producer.sendBatch({
              acks: -1,
              topicMessages: topics.map((topic) => ({
                topic,
                messages: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: `${caller}` })),
              })),
            });
          } finally {
            await producer.disconnect();
          }
        }),
      );
      for (const topic of topics) {
        const offsets = await admin.fetchTopicOffsets(topic);
        assert.equal(offsets.length, PARTITIONS, `${topic} has ${PARTITIONS} partitions`);
        assert.ok(offsets.every((p) => Number(p.high) === CALLERS), `${topic}: every caller wrote to every partition (${JSON.stringify(offsets)})`);
      }
    }
    t.diagnostic(`${ROUNDS} rounds x ${CALLERS} concurrent callers x ${created.length / ROUNDS} new topics x ${PARTITIONS} partitions`);
  } finally {
    await admin.deleteTopics({ topics: created }).catch(() => {});
    await admin.disconnect();
  }
});
