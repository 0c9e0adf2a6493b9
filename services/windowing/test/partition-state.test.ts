import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeFeatures, SENSOR_NAMES, windowDef } from '@pitwall/common';
import { createPartitionState, type ClosedWindow } from '../src/partition-state.js';
import { decodeResume, encodeResume } from '../src/commit-metadata.js';

const DEF = windowDef(10_000, 10_000, 2_000);
const vals = (v: number) => new Float64Array(SENSOR_NAMES.length).fill(v);

test('a window is emitted once the watermark passes end + grace, with batch-equal features', () => {
  const s = createPartitionState(DEF);
  const events = [0, 1000, 5000, 9999].map((ts, i) => ({ ts, values: vals(i) }));
  events.forEach((e, i) => assert.equal(s.add('a', e.ts, e.values, BigInt(i)), 'added'));
  assert.equal(s.add('a', 11_999, vals(9), 4n), 'added');
  assert.deepEqual(s.drainClosed(), [], 'watermark 11999 < 12000: still open');
  s.add('b', 12_000, vals(1), 5n);
  const closed = s.drainClosed();
  assert.equal(closed.length, 1);
  const w = closed[0]!;
  assert.deepEqual([w.vehicleId, w.start, w.end, w.eventCount], ['a', 0, 10_000, 4]);
  assert.deepEqual(w.features, computeFeatures(events));
  assert.deepEqual(s.drainClosed(), [], 'emitted only once');
});

test('events inside the grace period in any order give the same record', () => {
  const order1 = [[3000, 1], [11_500, 0], [1000, 2], [11_000, 3]] as const;
  const order2 = [[11_000, 3], [1000, 2], [11_500, 0], [3000, 1]] as const;
  const run = (order: readonly (readonly [number, number])[]): ClosedWindow[] => {
    const s = createPartitionState(DEF);
    order.forEach(([ts, v], i) => s.add('a', ts, vals(v), BigInt(i)));
    s.add('z', 22_000, vals(0), 99n);
    return s.drainClosed().filter((w) => w.vehicleId === 'a');
  };
  assert.deepEqual(run(order1), run(order2));
});

test('a repeated (vehicle, ts) is counted once', () => {
  const s = createPartitionState(DEF);
  assert.equal(s.add('a', 1000, vals(1), 0n), 'added');
  assert.equal(s.add('a', 1000, vals(1), 1n), 'duplicate');
  assert.equal(s.add('b', 1000, vals(1), 2n), 'added', 'same ts, other vehicle');
  s.add('a', 30_000, vals(1), 3n);
  const a = s.drainClosed().find((w) => w.vehicleId === 'a')!;
  assert.equal(a.eventCount, 1);
});

test('an event for an already emitted window is late', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 0n);
  s.add('a', 15_000, vals(1), 1n);
  assert.equal(s.drainClosed().length, 1);
  assert.equal(s.add('a', 2000, vals(1), 2n), 'late');
  assert.equal(s.add('b', 9000, vals(1), 3n), 'late', 'lateness is per partition watermark, not per vehicle');
});

test('commit offset is the first offset of the earliest open window', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 10n);
  s.add('b', 5000, vals(1), 11n);
  s.add('a', 11_000, vals(1), 12n);
  assert.equal(s.commitOffset(13n), 10n);
  s.add('b', 12_500, vals(1), 13n); // closes [0,10s): a and b emitted
  assert.equal(s.drainClosed().length, 2);
  assert.equal(s.commitOffset(14n), 12n);
  s.add('a', 40_000, vals(1), 14n);
  s.drainClosed();
  assert.equal(s.commitOffset(15n), 14n);
});

test('resuming from the commit rebuilds open windows exactly and skips emitted ones', () => {
  // Uninterrupted run over a log of events.
  const log: Array<[string, number, number]> = [];
  for (let t = 0; t < 60_000; t += 700) log.push([t % 1400 === 0 ? 'a' : 'b', t, (t / 700) % 7]);
  const full = createPartitionState(DEF);
  const fullOut: ClosedWindow[] = [];
  log.forEach(([v, ts, x], i) => {
    full.add(v, ts, vals(x), BigInt(i));
    fullOut.push(...full.drainClosed());
  });
  // Interrupted at offset 40: commit, then a new state resumes from the committed offset.
  const first = createPartitionState(DEF);
  const out: ClosedWindow[] = [];
  const crashAt = 40;
  log.slice(0, crashAt).forEach(([v, ts, x], i) => {
    first.add(v, ts, vals(x), BigInt(i));
    out.push(...first.drainClosed());
  });
  const committed = first.commitOffset(BigInt(crashAt));
  const meta = encodeResume({ watermark: first.watermark, replayUntil: BigInt(crashAt) });
  const resumed = createPartitionState(DEF, decodeResume(meta));
  const results: string[] = [];
  for (let i = Number(committed); i < log.length; i++) {
    const [v, ts, x] = log[i]!;
    results.push(resumed.add(v, ts, vals(x), BigInt(i)));
    out.push(...resumed.drainClosed());
  }
  assert.ok(!results.includes('late'), 're-read events are replays, never late');
  assert.deepEqual(out, fullOut);
});

test('commit metadata round-trips and tolerates garbage', () => {
  assert.deepEqual(decodeResume(encodeResume({ watermark: 123, replayUntil: 456n })), { watermark: 123, replayUntil: 456n });
  assert.deepEqual(decodeResume(null), { watermark: Number.NEGATIVE_INFINITY, replayUntil: 0n });
  assert.deepEqual(decodeResume('{oops'), { watermark: Number.NEGATIVE_INFINITY, replayUntil: 0n });
  assert.deepEqual(decodeResume(encodeResume({ watermark: Number.NEGATIVE_INFINITY, replayUntil: 0n })).watermark, Number.NEGATIVE_INFINITY);
});

test('ignition off closes the vehicle windows at once; later events for them are late', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 0n);
  s.add('a', 2000, vals(2), 1n);
  s.add('b', 2500, vals(3), 2n);
  assert.equal(s.closeVehicle('a', 2n), 1);
  const closed = s.drainClosed();
  assert.deepEqual(closed.map((w) => [w.vehicleId, w.start, w.eventCount]), [['a', 0, 2]]);
  assert.equal(s.add('a', 3000, vals(1), 3n), 'late', 'window [0,10s) of a was emitted by ignition off');
  assert.equal(s.add('b', 3000, vals(1), 4n), 'added', 'other vehicles are not affected');
  assert.equal(s.add('a', 10_500, vals(1), 5n), 'added', 'the next window opens normally');
  assert.equal(s.closeVehicle('nobody', 6n), 0);
  assert.equal(s.commitOffset(7n), 2n, 'b still holds the commit back');
});

test('a replayed ignition off closes again without emitting again', () => {
  const log: Array<[string, number, boolean]> = [
    ['b', 500, false],
    ['a', 1000, false],
    ['a', 2000, true], // ignition off
    ['b', 3000, false],
    ['a', 11_000, false],
    ['b', 14_000, false],
  ];
  const run = (state: ReturnType<typeof createPartitionState>, from: number, to: number, out: ClosedWindow[]) => {
    for (let i = from; i < to; i++) {
      const [v, ts, off] = log[i]!;
      state.add(v, ts, vals(i), BigInt(i));
      if (off) state.closeVehicle(v, BigInt(i));
      out.push(...state.drainClosed());
    }
  };
  const fullOut: ClosedWindow[] = [];
  run(createPartitionState(DEF), 0, log.length, fullOut);
  const first = createPartitionState(DEF);
  const out: ClosedWindow[] = [];
  run(first, 0, 4, out);
  const committed = Number(first.commitOffset(4n));
  assert.equal(committed, 0, 'b opened first and is still open');
  const resumed = createPartitionState(DEF, decodeResume(encodeResume({ watermark: first.watermark, replayUntil: 4n })));
  run(resumed, committed, log.length, out);
  assert.deepEqual(out, fullOut);
  assert.equal(out.filter((w) => w.vehicleId === 'a' && w.start === 0).length, 1);
});

test('an idle marker closes every open window of the partition, not emitted again on replay', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 0n);
  s.add('b', 2000, vals(2), 1n);
  assert.equal(s.closeAll(2n), 2);
  assert.deepEqual(s.drainClosed().map((w) => w.vehicleId), ['a', 'b']);
  assert.equal(s.openWindows(), 0);
  assert.equal(s.vehicles(), 0, 'idle vehicles free their state');
  assert.equal(s.commitOffset(3n), 3n);
  const replay = createPartitionState(DEF, { watermark: 2000, replayUntil: 3n });
  replay.add('a', 1000, vals(1), 0n);
  replay.add('b', 2000, vals(2), 1n);
  assert.equal(replay.closeAll(2n), 2);
  assert.deepEqual(replay.drainClosed(), []);
});
