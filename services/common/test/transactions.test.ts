import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONCURRENT_TXN_WAITS_MS, sendOffsetsInTransaction } from '../src/kafka.js';

const offsets = { consumerGroupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0, offset: '5' }] }] };
const concurrent = Object.assign(new Error('another concurrent operation on the same transaction was ongoing'), { type: 'CONCURRENT_TRANSACTIONS', retriable: true });

/** A transaction whose sendOffsets throws the given errors in turn, then succeeds. */
function txnFailing(errors: Error[]) {
  const calls: unknown[] = [];
  return {
    calls,
    sendOffsets(o: typeof offsets): Promise<void> {
      calls.push(o);
      const err = errors.shift();
      return err ? Promise.reject(err) : Promise.resolve();
    },
  };
}

test('CONCURRENT_TRANSACTIONS is retried with the same offsets until the coordinator takes them', async () => {
  const txn = txnFailing([concurrent, concurrent, concurrent]);
  assert.equal(await sendOffsetsInTransaction(txn, offsets, [0, 0, 0, 0]), 3);
  assert.equal(txn.calls.length, 4);
  assert.ok(txn.calls.every((c) => c === offsets));
});

test('other errors are thrown at once (fenced, authorization, a closed connection)', async () => {
  const fenced = Object.assign(new Error('fenced'), { type: 'INVALID_PRODUCER_EPOCH' });
  const txn = txnFailing([fenced]);
  await assert.rejects(sendOffsetsInTransaction(txn, offsets, [0, 0]), fenced);
  assert.equal(txn.calls.length, 1);
});

test('gives up after its waits: the caller aborts and resumes from the last commit', async () => {
  const txn = txnFailing(Array.from({ length: 10 }, () => concurrent));
  await assert.rejects(sendOffsetsInTransaction(txn, offsets, [0, 0]), concurrent);
  assert.equal(txn.calls.length, 3);
  // the default waits stay short next to a transaction timeout
  assert.ok(CONCURRENT_TXN_WAITS_MS.reduce((a, b) => a + b, 0) < 5_000);
});
