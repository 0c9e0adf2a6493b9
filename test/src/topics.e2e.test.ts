/**
 * provisionTopics on the real broker, as services use it at start: several processes at once
 * creating the same brand-new topics. No call may fail, and each returns only when the topics are
 * served: right after it, reading offsets and producing must work without a single retry. Just after
 * creation a KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION, then NOT_LEADER_OR_FOLLOWER for a
 * moment; kafkajs retries neither in its createTopics wait or fetchTopicOffsets, which made ingest
 * and the console fail to start on a fresh cluster in CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { provisionTopics } from '@pitwall/common';
import { runId, kafkaClientConfig } from './support/stack.js';

test('concurrent provisionTopics of fresh topics: no caller fails, and each can read offsets and produce at once without retries', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
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
          await provisionTopics(
            kafka,
            topics.map((topic) => ({ topic })),
            { partitions: PARTITIONS },
          );
          // Straight away, from a fresh client: a leader for every partition, and it answers ListOffsets.
          const own = kafka.admin();
          await own.connect();
          try {
            const { topics: meta } = await own.fetchTopicMetadata({ topics });
            assert.deepEqual(
              meta.map((m) => [m.name, m.partitions.filter((p) => p.leader >= 0).length]).sort(),
              topics.map((topic) => [topic, PARTITIONS]),
            );
            for (const topic of topics) assert.equal((await own.fetchTopicOffsets(topic)).length, PARTITIONS);
          } finally {
            await own.disconnect();
          }
          // No retries: the first NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION fails the test.
          const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
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
        assert.ok(
          offsets.every((p) => Number(p.high) === CALLERS),
          `${topic}: every caller wrote to every partition (${JSON.stringify(offsets)})`,
        );
      }
    }
    t.diagnostic(`${ROUNDS} rounds x ${CALLERS} concurrent callers x ${created.length / ROUNDS} new topics x ${PARTITIONS} partitions`);
  } finally {
    await admin.deleteTopics({ topics: created }).catch(() => {});
    await admin.disconnect();
  }
});
