import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeFeatures, SENSOR_NAMES, windowDef } from '@pitwall/common';
import { createPartitionState, type ClosedWindow, type FloorChange } from '../src/partition-state.js';
import { decodeResume, encodeResume } from '../src/commit-metadata.js';

const DEF = windowDef(10_000, 10_000, 2_000);
const vals = (v: number) => new Float64Array(SENSOR_NAMES.length).fill(v);

test("a window is emitted once the vehicle's own event time passes end + grace, with batch-equal features", () => {
  const s = createPartitionState(DEF);
  const events = [0, 1000, 5000, 9999].map((ts, i) => ({ ts, values: vals(i) }));
  events.forEach((e, i) => assert.equal(s.add('a', e.ts, e.values, BigInt(i)), 'added'));
  assert.equal(s.add('a', 11_999, vals(9), 4n), 'added');
  assert.deepEqual(s.drainClosed(), [], 'a at 11999 < 12000: still open');
  s.add('b', 50_000, vals(1), 5n);
  assert.deepEqual(s.drainClosed(), [], "another car's clock does not close a's window");
  s.add('a', 12_000, vals(1), 6n);
  const closed = s.drainClosed();
  assert.equal(closed.length, 1);
  const w = closed[0]!;
  assert.deepEqual([w.vehicleId, w.start, w.end, w.eventCount], ['a', 0, 10_000, 4]);
  assert.deepEqual(w.features, computeFeatures(events));
  assert.deepEqual(s.drainClosed(), [], 'emitted only once');
});

test('events inside the grace period in any order give the same record', () => {
  const order1 = [
    [3000, 1],
    [11_500, 0],
    [1000, 2],
    [11_000, 3],
  ] as const;
  const order2 = [
    [11_000, 3],
    [1000, 2],
    [11_500, 0],
    [3000, 1],
  ] as const;
  const run = (order: readonly (readonly [number, number])[]): ClosedWindow[] => {
    const s = createPartitionState(DEF);
    order.forEach(([ts, v], i) => s.add('a', ts, vals(v), BigInt(i)));
    s.add('a', 22_000, vals(0), 99n);
    return s.drainClosed().filter((w) => w.start === 0);
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

test("lateness is per vehicle: a reading a day ahead only closes its own car's windows", () => {
  const s = createPartitionState(DEF);
  const DAY = 86_400_000;
  for (let t = 0; t < 30_000; t += 1000) {
    s.add('a', t, vals(1), BigInt(t));
    s.add('b', t, vals(2), BigInt(t + 1));
  }
  assert.equal(s.drainClosed().length, 4, 'both cars closed [0,10s) and [10s,20s)');
  assert.equal(s.add('b', 29_500 + DAY, vals(3), 100n), 'added', 'b jumps a day ahead');
  assert.deepEqual(
    s.drainClosed().map((w) => [w.vehicleId, w.start]),
    [['b', 20_000]],
    "b's own window closes",
  );
  assert.equal(s.add('a', 30_000, vals(1), 101n), 'added', 'a is not affected');
  assert.equal(s.add('a', 42_000, vals(1), 102n), 'added');
  assert.deepEqual(
    s.drainClosed().map((w) => [w.vehicleId, w.start]),
    [
      ['a', 20_000],
      ['a', 30_000],
    ],
  );
  assert.equal(s.add('b', 30_000, vals(1), 103n), 'late', "b's own next readings are late: it can only hurt itself");
});

test('commit point: first offset of the earliest open window, with the clock just before it', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 10n, 500);
  s.add('b', 5000, vals(1), 11n, 600);
  s.add('a', 11_000, vals(1), 12n, 700);
  assert.deepEqual(s.commitPoint(13n), { offset: 10n, resume: { clock: Number.NEGATIVE_INFINITY, replayUntil: 13n } });
  s.add('a', 12_500, vals(1), 13n, 800); // closes a's [0,10s)
  assert.deepEqual(
    s.drainClosed().map((w) => w.vehicleId),
    ['a'],
  );
  assert.deepEqual(s.commitPoint(14n), { offset: 11n, resume: { clock: 500, replayUntil: 14n } });
  s.add('b', 40_000, vals(1), 14n, 900);
  s.drainClosed();
  assert.deepEqual(s.commitPoint(15n).offset, 12n);
});

test('a silent vehicle is closed after vehicleIdleMs of arrival time and leaves a floor', () => {
  const s = createPartitionState(DEF, { vehicleIdleMs: 5000 });
  s.add('a', 1000, vals(1), 0n, 100_000);
  s.add('b', 1000, vals(1), 1n, 100_000);
  s.add('b', 2000, vals(1), 2n, 104_999);
  assert.deepEqual(s.drainClosed(), [], '4999 ms of silence: still open');
  s.add('b', 3000, vals(1), 3n, 105_000);
  assert.deepEqual(
    s.drainClosed().map((w) => [w.vehicleId, w.start, w.eventCount]),
    [['a', 0, 1]],
  );
  assert.deepEqual(s.drainFloorChanges(), [{ vehicleId: 'a', floor: 10_000 }]);
  assert.equal(s.vehicles(), 1);
  assert.equal(s.add('a', 9000, vals(1), 4n, 105_100), 'late', 'a straggler for the emitted window is late');
  assert.equal(s.add('a', 10_000, vals(1), 5n, 105_200), 'added', 'readings after the floor open new windows');
  s.add('a', 22_000, vals(1), 6n, 105_300);
  assert.deepEqual(s.drainFloorChanges(), [{ vehicleId: 'a', floor: null }], 'its own event time passed the floor: dropped');
});

test('a car back from a tunnel gets its buffered readings windowed, not dropped as late', () => {
  const s = createPartitionState(DEF, { vehicleIdleMs: 60_000 });
  let off = 0n;
  // Both cars at 1 Hz for 30 s; then car a is offline for 5 minutes while b keeps sending.
  for (let t = 0; t < 30_000; t += 1000) {
    s.add('a', t, vals(1), off++, t + 50);
    s.add('b', t, vals(2), off++, t + 50);
  }
  for (let t = 30_000; t < 330_000; t += 1000) s.add('b', t, vals(2), off++, t + 50);
  const closedA = s.drainClosed().filter((w) => w.vehicleId === 'a');
  assert.deepEqual(
    closedA.map((w) => [w.start, w.eventCount]),
    [
      [0, 10],
      [10_000, 10],
      [20_000, 10],
    ],
    "a's last window closed by silence",
  );
  // a comes back and sends its 300 buffered readings at once.
  const results = new Set<string>();
  for (let t = 30_000; t < 330_000; t += 1000) results.add(s.add('a', t, vals(3), off++, 330_100));
  assert.deepEqual([...results], ['added']);
  const back = s.drainClosed().filter((w) => w.vehicleId === 'a');
  assert.equal(back.length, 29, 'windows [30s,40s) .. [310s,320s) closed by its own event time');
  assert.ok(back.every((w) => w.eventCount === 10));
});

test('commit metadata round-trips, reads version 1 and tolerates garbage', () => {
  assert.deepEqual(decodeResume(encodeResume({ clock: 123, replayUntil: 456n })), { clock: 123, replayUntil: 456n });
  assert.deepEqual(decodeResume(null), { clock: Number.NEGATIVE_INFINITY, replayUntil: 0n });
  assert.deepEqual(decodeResume('{oops'), { clock: Number.NEGATIVE_INFINITY, replayUntil: 0n });
  assert.deepEqual(decodeResume(encodeResume({ clock: Number.NEGATIVE_INFINITY, replayUntil: 0n })).clock, Number.NEGATIVE_INFINITY);
  assert.deepEqual(decodeResume('{"v":1,"wm":2000,"ru":"3"}'), { clock: Number.NEGATIVE_INFINITY, replayUntil: 3n, legacyWatermark: 2000 });
});

test('resuming from a version 1 commit does not emit windows its watermark had closed', () => {
  const replay = createPartitionState(DEF, { resume: decodeResume('{"v":1,"wm":12000,"ru":"3"}') });
  assert.equal(replay.add('a', 1000, vals(1), 0n), 'replayed');
  assert.equal(replay.add('a', 11_000, vals(1), 1n), 'added');
  assert.equal(replay.add('a', 12_000, vals(1), 2n), 'added');
  assert.deepEqual(replay.drainClosed(), []);
});

test('ignition off closes the vehicle windows at once; later events for them are late', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 0n);
  s.add('a', 2000, vals(2), 1n);
  s.add('b', 2500, vals(3), 2n);
  assert.equal(s.closeVehicle('a', 2n), 1);
  const closed = s.drainClosed();
  assert.deepEqual(
    closed.map((w) => [w.vehicleId, w.start, w.eventCount]),
    [['a', 0, 2]],
  );
  assert.equal(s.add('a', 3000, vals(1), 3n), 'late', 'window [0,10s) of a was emitted by ignition off');
  assert.equal(s.add('b', 3000, vals(1), 4n), 'added', 'other vehicles are not affected');
  assert.equal(s.add('a', 10_500, vals(1), 5n), 'added', 'the next window opens normally');
  assert.equal(s.closeVehicle('nobody', 6n), 0);
  assert.equal(s.commitPoint(7n).offset, 2n, 'b still holds the commit back');
});

test('an idle marker closes every open window of the partition, not emitted again on replay', () => {
  const s = createPartitionState(DEF);
  s.add('a', 1000, vals(1), 0n);
  s.add('b', 2000, vals(2), 1n);
  assert.equal(s.closeAll(2n), 2);
  assert.deepEqual(
    s.drainClosed().map((w) => w.vehicleId),
    ['a', 'b'],
  );
  const floors: FloorChange[] = s.drainFloorChanges();
  assert.equal(s.openWindows(), 0);
  assert.equal(s.vehicles(), 0, 'idle vehicles free their state');
  assert.equal(s.commitPoint(3n).offset, 3n);
  const replay = createPartitionState(DEF, {
    resume: { clock: Number.NEGATIVE_INFINITY, replayUntil: 3n },
    floors: new Map(floors.map((f) => [f.vehicleId, f.floor!])),
  });
  assert.equal(replay.add('a', 1000, vals(1), 0n), 'replayed');
  assert.equal(replay.add('b', 2000, vals(2), 1n), 'replayed');
  assert.equal(replay.closeAll(2n), 0);
  assert.deepEqual(replay.drainClosed(), []);
  assert.deepEqual(replay.drainFloorChanges(), [], 'replayed decisions write nothing');
});

test('an idle marker advances the arrival clock: only cars silent for the idle time close', () => {
  const s = createPartitionState(DEF, { vehicleIdleMs: 60_000 });
  s.add('a', 1000, vals(1), 0n, 100_000);
  s.add('b', 1000, vals(1), 1n, 130_000);
  assert.equal(s.idleTick(150_000, 2n), 0, 'an upstream stall shorter than the idle time closes nothing');
  assert.equal(s.idleTick(160_000, 3n), 1, 'a has been silent for 60 s');
  assert.deepEqual(
    s.drainClosed().map((w) => w.vehicleId),
    ['a'],
  );
  assert.equal(s.idleTick(155_000, 4n), 0, 'the clock never goes back');
  assert.equal(s.idleTick(190_000, 5n), 1);
  assert.equal(s.openWindows(), 0);
  assert.equal(createPartitionState(DEF).idleTick(0, 0n), 0, 'no vehicle idle time: closes everything (nothing open here)');
});
