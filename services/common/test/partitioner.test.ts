import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { javaCompatiblePartitioner, keyPartition, murmur2 } from '../src/partitioner.js';

const metadata = (n: number, leaderless: number[] = []): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: leaderless.includes(partitionId) ? -1 : 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));

test("murmur2 gives the Java client's hashes", () => {
  // From org.apache.kafka.common.utils.UtilsTest.testMurmur2 (Kafka 3.x/4.x).
  const cases: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [key, hash] of cases) assert.equal(murmur2(key), hash, key);
});

test("partitions match kafkajs's DefaultPartitioner for every kind of key", () => {
  const theirs = Partitioners.DefaultPartitioner();
  const ours = javaCompatiblePartitioner();
  const keys: Array<string | Buffer> = ['', 'a', 'ab', 'abc', 'car-0001', 'ü-car', '車両-42', '😀', Buffer.from([0, 255, 128, 7, 9])];
  let seed = 42;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff);
  for (let i = 0; i < 5000; i++) {
    const len = rand() % 48;
    keys.push(Array.from({ length: len }, () => String.fromCharCode(rand() % 3 === 0 ? 0x20 + (rand() % 0x3000) : 0x20 + (rand() % 95))).join(''));
  }
  for (const partitions of [1, 3, 7, 12, 64]) {
    const partitionMetadata = metadata(partitions);
    for (const key of keys) {
      const message = { key, value: null };
      const expected = theirs({ topic: 't', partitionMetadata, message });
      assert.equal(ours({ topic: 't', partitionMetadata, message }), expected, `${JSON.stringify(key)} over ${partitions}`);
      assert.equal(keyPartition(key, partitions), expected);
    }
  }
});

test('an explicit partition wins; records without a key go round robin over partitions with a leader', () => {
  const ours = javaCompatiblePartitioner();
  assert.equal(ours({ topic: 't', partitionMetadata: metadata(4), message: { key: 'car-0001', partition: 2, value: null } }), 2);
  const partitionMetadata = metadata(4, [1, 3]);
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) seen.add(ours({ topic: 't', partitionMetadata, message: { value: null } }));
  assert.deepEqual([...seen].sort(), [0, 2]);
  const none = metadata(3, [0, 1, 2]);
  const picked = new Set<number>();
  for (let i = 0; i < 10; i++) picked.add(ours({ topic: 'u', partitionMetadata: none, message: { value: null } }));
  assert.deepEqual([...picked].sort(), [0, 1, 2]);
});

test('partition count must be positive', () => {
  assert.throws(() => keyPartition('a', 0), RangeError);
  assert.throws(() => keyPartition('a', 1.5), RangeError);
});
