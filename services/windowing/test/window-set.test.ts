import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureFields, SENSOR_NAMES, windowDef, type WindowDef } from '@pitwall/common';
import { createPartitionState } from '../src/partition-state.js';
import { createWindowSetState, floorKey, splitFloors } from '../src/window-set.js';
import { toFeatureRecord } from '../src/windowing.js';

const TEN = windowDef(10_000, 10_000, 2_000);
const TWO_MIN = windowDef(120_000, 120_000, 2_000);
const vals = (v: number) => new Float64Array(SENSOR_NAMES.length).fill(v);

/** One car reporting every 10 s, as the reference CarData fleet does. */
function feed(defs: readonly WindowDef[], readings: number, opts: { vehicleIdleMs?: number } = {}) {
  const s = createWindowSetState(defs, opts);
  const results: string[] = [];
  for (let i = 0; i < readings; i++) results.push(s.add('car1', i * 10_000, vals(i), BigInt(i), i * 10_000));
  return { s, results };
}

test('one definition: the same windows and features as a bare PartitionState, named by definition', () => {
  const bare = createPartitionState(TEN);
  const { s } = feed([TEN], 30);
  for (let i = 0; i < 30; i++) bare.add('car1', i * 10_000, vals(i), BigInt(i), i * 10_000);
  const want = bare.drainClosed();
  const got = s.drainClosed();
  assert.equal(got.length, 28);
  assert.deepEqual(
    got.map(({ def, ...w }) => (assert.equal(def, TEN), w)),
    want,
  );
  assert.deepEqual(s.commitPoint(30n), bare.commitPoint(30n));
});

test('10 s and 120 s side by side over a 10 s fleet: one reading per short window, 12 per long one', () => {
  const { s, results } = feed([TEN, TWO_MIN], 38);
  assert.ok(results.every((r) => r === 'added'));
  const closed = s.drainClosed();
  const short = closed.filter((w) => w.def === TEN);
  const long = closed.filter((w) => w.def === TWO_MIN);
  assert.equal(short.length, 36, 'every 10 s window closed but the last two (370 s is not past 360 s + 10 s + grace)');
  assert.ok(short.every((w) => w.eventCount === 1));
  assert.deepEqual(
    long.map((w) => [w.start, w.end, w.eventCount]),
    [
      [0, 120_000, 12],
      [120_000, 240_000, 12],
      [240_000, 360_000, 12],
    ],
  );
  // Ordered by start, then size.
  const order = closed.map((w) => [w.start, w.def.sizeMs]);
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!),
  );
  assert.equal(s.openWindows(), 2 + 1, 'open: the last two 10 s windows and the fourth 2 min one');
});

test('the commit point is the earliest open window over every definition', () => {
  const { s } = feed([TEN, TWO_MIN], 14);
  s.drainClosed();
  // The 2 min window [120 s, 240 s) opened at offset 12; the 10 s windows at 120 s and 130 s are still open.
  assert.equal(s.commitPoint(14n).offset, 12n);
  const long = createWindowSetState([TWO_MIN, TEN]);
  for (let i = 0; i < 14; i++) long.add('car1', i * 10_000, vals(i), BigInt(i), i * 10_000);
  assert.equal(long.commitPoint(14n).offset, 12n, 'whatever the order of the definitions');
});

test("add: 'late' only when no definition takes the reading", () => {
  const table: Array<{ name: string; upTo: number; ts: number; want: string }> = [
    { name: 'late for 10 s windows, still open for the 2 min one', upTo: 110_000, ts: 95_000, want: 'added' },
    { name: 'late for both (its 2 min window closed at 122 s)', upTo: 130_000, ts: 5_000, want: 'late' },
    { name: 'a repeat of a reading both hold', upTo: 110_000, ts: 100_000, want: 'duplicate' },
  ];
  for (const t of table) {
    const s = createWindowSetState([TEN, TWO_MIN]);
    for (let ts = 0; ts <= t.upTo; ts += 10_000) s.add('car1', ts, vals(ts), BigInt(ts / 10_000), ts);
    assert.equal(s.add('car1', t.ts, vals(0), 99n, t.upTo), t.want, t.name);
  }
});

test('floors: the first definition keyed by vehicle id, the others by id@size; unknown sizes dropped', () => {
  const defs = [TEN, TWO_MIN];
  assert.equal(floorKey(defs, 0, 'car1'), 'car1');
  assert.equal(floorKey(defs, 1, 'car1'), 'car1@120000');
  const split = splitFloors(
    defs,
    new Map([
      ['car1', 10],
      ['car1@120000', 20],
      ['car2@60000', 30],
    ]),
  );
  assert.deepEqual(
    split.map((m) => [...m]),
    [[['car1', 10]], [['car1', 20]]],
  );
  const s = createWindowSetState(defs, { vehicleIdleMs: 30_000 });
  s.add('car1', 0, vals(0), 0n, 0);
  s.add('car2', 0, vals(0), 1n, 40_000);
  assert.deepEqual(
    s.drainFloorChanges().sort((a, b) => (a.vehicleId < b.vehicleId ? -1 : 1)),
    [
      { vehicleId: 'car1', floor: 10_000 },
      { vehicleId: 'car1@120000', floor: 120_000 },
    ],
  );
});

test('feature records: v1 fields by default, the definition named when asked (features v2)', () => {
  const { s } = feed([TEN, TWO_MIN], 25);
  const long = s.drainClosed().find((w) => w.def === TWO_MIN)!;
  const v1 = toFeatureRecord(long);
  assert.equal('window_size_ms' in v1, false);
  const v2 = toFeatureRecord(long, long.def);
  assert.equal(v2.window_size_ms, 120_000);
  assert.equal(v2.window_advance_ms, 120_000);
  assert.equal(v2.event_count, 12);
  // Every feature by name, with the identity fields, and nothing else (built in place, not spread).
  const expected = { vehicle_id: long.vehicleId, window_start: long.start, window_end: long.end, event_count: long.eventCount, ...featureFields(long.features) };
  assert.deepEqual(v1, expected);
  assert.deepEqual(v2, { ...expected, window_size_ms: 120_000, window_advance_ms: 120_000 });
});
