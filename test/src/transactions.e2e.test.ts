/**
 * Back-to-back transactions with offsets, as the exactly-once stages (windowing, incidents) commit
 * one per fetched batch, on the real broker. Right after a commit the coordinator still writes the
 * previous transaction's markers and answers the next AddOffsetsToTxn with CONCURRENT_TRANSACTIONS;
 * kafkajs sends it once. Before sendOffsetsInTransaction, windowing aborted such transactions (51 in
 * a 300-car load test) and rebuilt the partition's state each time.
 * The test commits 150 transactions in a row through the helper: every one commits, and the group's
 * committed offset is the last one. The same loop through kafkajs alone is run first and its
 * failures are reported (not asserted: they depend on the broker's timing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { ensureTopics, sendOffsetsInTransaction } from '@pitwall/common';
import { kafkaClientConfig, runId } from './support/stack.js';

const kafka = new Kafka({ clientId: 'e2e-transactions', ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
const ROUNDS = 150;

async function loop(producer: Producer, topic: string, group: string, viaHelper: boolean): Promise<{ failed: number; retries: number }> {
  let failed = 0;
  let retries = 0;
  for (let i = 1; i <= ROUNDS; i++) {
    const txn = await producer.transaction();
    const offsets = { consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: String(i) }] }] };
    try {
      if (viaHelper) retries += await sendOffsetsInTransaction(txn, offsets);
      else await txn.sendOffsets(offsets);
      await txn.commit();
    } catch (err) {
      failed++;
      await txn.abort().catch(() => {});
      if ((err as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS') throw err;
    }
  }
  return { failed, retries };
}

test('150 transactions in a row, each adding offsets right after the last commit, all commit', { timeout: 240_000 }, async (t) => {
  const id = runId();
  const topic = `pitwall.test.txn.${id}`;
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ transactionalId: `pitwall-test-txn-${id}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await ensureTopics(admin, [{ topic }], { partitions: 1 });
    const raw = await loop(producer, topic, `pitwall-test-txn-raw-${id}`, false);
    t.diagnostic(`kafkajs alone: ${raw.failed} of ${ROUNDS} transactions failed with CONCURRENT_TRANSACTIONS`);

    const group = `pitwall-test-txn-${id}`;
    const helped = await loop(producer, topic, group, true);
    t.diagnostic(`sendOffsetsInTransaction: ${helped.failed} failed, ${helped.retries} retries`);
    assert.equal(helped.failed, 0, 'every transaction committed');
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    assert.equal(committed?.partitions[0]?.offset, String(ROUNDS));
  } finally {
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});
