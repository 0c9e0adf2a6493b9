import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionSpecs, locate, splitEvenly, vehicleIdOf, workerSlices } from '../src/partition.js';
import { createFleet } from '@pitwall/simulator';

test('splitEvenly: contiguous, complete, sizes differ by at most one, no empty part', () => {
  for (const [n, parts] of [
    [50, 2],
    [7, 3],
    [100_000, 2000],
    [3, 5],
    [1, 1],
    [5001, 2],
  ] as const) {
    const ranges = splitEvenly(n, parts);
    assert.equal(ranges.length, Math.min(n, parts));
    let next = 0;
    for (const r of ranges) {
      assert.equal(r.start, next);
      assert.ok(r.count >= 1);
      next += r.count;
    }
    assert.equal(next, n);
    const sizes = ranges.map((r) => r.count);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n}/${parts}`);
  }
  assert.deepEqual(splitEvenly(7, 3), [
    { start: 0, count: 3 },
    { start: 3, count: 2 },
    { start: 5, count: 2 },
  ]);
  assert.throws(() => splitEvenly(3, 0), /parts/);
});

test('locate agrees with splitEvenly for every item', () => {
  for (const [n, parts] of [
    [7, 3],
    [50, 2],
    [101, 10],
    [5, 5],
  ] as const) {
    const ranges = splitEvenly(n, parts);
    for (let i = 0; i < n; i++) {
      const { part, offset } = locate(i, n, parts);
      assert.equal(ranges[part]!.start + offset, i, `${i} of ${n}/${parts}`);
      assert.ok(offset < ranges[part]!.count);
    }
  }
  assert.throws(() => locate(7, 7, 3), /outside/);
});

test('car ids: the simulated fleet of each connection gives exactly vehicleIdOf, all with the run prefix', () => {
  const specs = connectionSpecs('ltx', 10, 4);
  assert.deepEqual(
    specs.map((s) => [s.label, s.cars]),
    [
      ['ltx-00001', 3],
      ['ltx-00002', 3],
      ['ltx-00003', 2],
      ['ltx-00004', 2],
    ],
  );
  const ids = specs.flatMap((s) => createFleet({ cars: s.cars, seed: 1, idPrefix: s.label }).vehicleIds);
  assert.deepEqual(
    ids,
    Array.from({ length: 10 }, (_, i) => vehicleIdOf('ltx', i, 10, 4)),
  );
  assert.equal(new Set(ids).size, 10);
  assert.ok(ids.every((id) => id.startsWith('ltx-')));
  assert.equal(vehicleIdOf('ltx', 0, 3, 3), 'ltx-00001-0001');
});

test('workers get contiguous connection ranges covering all, at most one apart', () => {
  assert.deepEqual(workerSlices(50, 2), [
    { start: 0, count: 25 },
    { start: 25, count: 25 },
  ]);
  assert.deepEqual(workerSlices(5001, 2), [
    { start: 0, count: 2501 },
    { start: 2501, count: 2500 },
  ]);
  assert.equal(workerSlices(2, 4).length, 2);
});
