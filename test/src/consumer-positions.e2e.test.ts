/**
 * runFromPositions on the real broker: a reader that chooses its own start (console scores and
 * sensor charts, training from a Kafka range) keeps its place when kafkajs restarts the crashed
 * consumer. kafkajs forgets seeks on a restart and starts the new session at the latest offset;
 * on a brand-new cluster the first joins crash with GROUP_LOAD_IN_PROGRESS, so this is what
 * happens at the start of a fresh deployment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { provisionTopics, runFromPositions } from '@pitwall/common';
import { runId, waitFor, kafkaClientConfig } from './support/stack.js';

test('a consumer restarted after a crash resumes at its positions: every record from the start once', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const topic = `e2e.${id}.positions`;
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  await provisionTopics(kafka, [{ topic, numPartitions: 1 }], { partitions: 1 });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 30 }, (_, i) => ({ value: String(i) })) });
  await producer.disconnect();

  // No retries: the error thrown below crashes the consumer at once, and kafkajs restarts it.
  const consumer = kafka.consumer({ groupId: `e2e.${id}.positions`, maxWaitTimeInMs: 100, retry: { retries: 0, initialRetryTime: 100 } });
  let restarts = 0;
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) restarts++;
  });
  const seen: number[] = [];
  let next = 10n;
  let crashed = false;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await runFromPositions(consumer, () => [{ topic, partition: 0, offset: String(next) }], {
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < next) continue;
          if (!crashed && offset === 15n) {
            crashed = true;
            throw new Error('crash in the middle of a batch');
          }
          seen.push(Number(m.value!.toString()));
          next = offset + 1n;
        }
      },
    });
    await waitFor('records 10..29', () => seen.length >= 20 || undefined, 60_000).catch(() => undefined);
    t.diagnostic(`restarts ${restarts}, read ${seen.join(',')}`);
    assert.equal(crashed, true);
    assert.ok(restarts >= 1, 'kafkajs restarted the crashed consumer');
    assert.deepEqual(
      seen,
      Array.from({ length: 20 }, (_, i) => 10 + i),
      'from the chosen start, nothing skipped or repeated across the restart',
    );
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});
