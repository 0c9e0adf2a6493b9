import assert from 'node:assert/strict';
import test from 'node:test';
import { partitionsToRead } from '../src/topic-reader.js';

test('a topic reader waits only for partitions that hold records, up to their end at the start', () => {
  const cases: { offsets: { partition: number; high: string; low: string }[]; ends: [number, bigint][] }[] = [
    { offsets: [], ends: [] },
    { offsets: [{ partition: 0, high: '0', low: '0' }], ends: [] },
    {
      offsets: [
        { partition: 0, high: '0', low: '0' },
        { partition: 1, high: '17', low: '0' },
        { partition: 2, high: '40', low: '40' }, // compacted or deleted up to its end
        { partition: 3, high: '41', low: '40' },
      ],
      ends: [
        [1, 17n],
        [3, 41n],
      ],
    },
    { offsets: [{ partition: 5, high: '9007199254740993', low: '9007199254740992' }], ends: [[5, 9007199254740993n]] },
  ];
  for (const { offsets, ends } of cases) assert.deepEqual([...partitionsToRead(offsets).entries()], ends);
});
