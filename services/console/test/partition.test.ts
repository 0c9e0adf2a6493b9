import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners } from 'kafkajs';
import { partitionForKey } from '../src/partition.js';

test("partitionForKey equals kafkajs' default partitioner", () => {
  const keys = ['', 'a', 'ab', 'abc', 'abcd', 'car-0001', 'car-0002', 'e2e-xyz-0004', 'ünïcødé-🚗', 'x'.repeat(257)];
  for (let i = 0; i < 200; i++) keys.push(`vehicle-${i}-${(i * 7919).toString(36)}`);
  const kafkajs = Partitioners.DefaultPartitioner();
  const spread = new Set<number>();
  for (const partitions of [1, 2, 3, 6, 7, 12, 100]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, p) => ({ partitionId: p, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    for (const key of keys) {
      const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
      assert.equal(partitionForKey(key, partitions), expected, `${key} over ${partitions}`);
      assert.equal(partitionForKey(Buffer.from(key), partitions), expected);
      if (partitions === 12) spread.add(expected);
    }
  }
  assert.ok(spread.size > 6, 'keys spread over the partitions');
});

test('partition count must be positive', () => {
  assert.throws(() => partitionForKey('a', 0), RangeError);
  assert.throws(() => partitionForKey('a', 1.5), RangeError);
});
