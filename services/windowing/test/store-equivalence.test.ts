/**
 * Differential test of the packed event store (partition-state.ts) against the partition state as
 * it was before (reference-partition-state.ts, a Map of events per window): the same random
 * sequences of readings (out of order, redelivered, late, with special values), ignition offs,
 * idle markers, closeAll and resumes with floors, replay offsets and a legacy watermark go to
 * both, and every answer must be equal: add results, emitted windows with their features compared
 * bit for bit, floor changes, commit points, clocks, vehicle times and counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mulberry32, SENSOR_NAMES, windowDef, type WindowDef } from '@pitwall/common';
import { createPartitionState, type ClosedWindow, type PartitionStateOptions } from '../src/partition-state.js';
import * as reference from './reference-partition-state.js';

const T0 = 1_700_000_123_456;
const SPECIAL = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE, Number.MAX_VALUE, 1e-300, -1e300];

/** Seeded, so a failing seed replays exactly. */
const prng = mulberry32;

const bits = (a: Float64Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const plain = (ws: ClosedWindow[]) => ws.map((w) => ({ ...w, features: bits(w.features) }));

interface Scenario {
  seed: number;
  def: WindowDef;
  readings: number;
  vehicles: number;
  idleMs: number;
  resume: boolean;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  seed: fc.integer(),
  def: fc.oneof(fc.constant(windowDef(10_000, 10_000, 2_000)), fc.constant(windowDef(10_000, 5_000, 2_000)), fc.constant(windowDef(3_000, 1_000, 0)), fc.constant(windowDef(4_000, 4_000, 500))),
  readings: fc.integer({ min: 50, max: 400 }),
  vehicles: fc.integer({ min: 1, max: 6 }),
  idleMs: fc.constantFrom(0, 5_000, 20_000),
  resume: fc.boolean(),
});

function run(s: Scenario): void {
  const rnd = prng(s.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const ids = Array.from({ length: s.vehicles }, (_, i) => `car-${i}`);
  const opts: PartitionStateOptions = { vehicleIdleMs: s.idleMs };
  if (s.resume) {
    const legacy = rnd() < 0.5;
    opts.resume = { clock: T0 + int(5_000), replayUntil: BigInt(int(s.readings)), ...(legacy ? { legacyWatermark: T0 + int(30_000) } : {}) };
    opts.floors = new Map(ids.filter(() => rnd() < 0.4).map((id) => [id, T0 + int(20) * 1_000]));
  }
  const mine = createPartitionState(s.def, opts);
  const ref = reference.createPartitionState(s.def, opts);
  const time = ids.map(() => T0 + int(3_000));
  const sent: { id: string; ts: number; values: Float64Array }[] = [];
  let received = T0;
  for (let i = 0; i < s.readings; i++) {
    const offset = BigInt(i);
    const where = `seed ${s.seed}, step ${i}`;
    const op = rnd();
    if (op < 0.02) {
      assert.equal(mine.closeAll(offset), ref.closeAll(offset), where);
    } else if (op < 0.05) {
      const id = ids[int(ids.length)]!;
      assert.equal(mine.closeVehicle(id, offset), ref.closeVehicle(id, offset), where);
    } else if (op < 0.08) {
      received += int(30_000);
      assert.equal(mine.idleTick(received, offset), ref.idleTick(received, offset), where);
    } else if (op < 0.18 && sent.length > 0) {
      // A redelivery (QoS 1) of an earlier reading, same values.
      const e = sent[sent.length - 1 - int(Math.min(sent.length, 20))]!;
      assert.equal(mine.add(e.id, e.ts, e.values, offset, received), ref.add(e.id, e.ts, e.values, offset, received), where);
    } else {
      const v = int(ids.length);
      const id = ids[v]!;
      // Mostly forward at ~1 Hz with jitter; sometimes far back (late) or far ahead.
      const r = rnd();
      time[v]! += r < 0.1 ? -int(15_000) : r < 0.13 ? int(40_000) : 200 + int(1_600);
      const ts = r < 0.05 ? time[v]! + 0.5 : time[v]!;
      const values = new Float64Array(SENSOR_NAMES.length);
      for (let k = 0; k < values.length; k++) values[k] = rnd() < 0.02 ? SPECIAL[int(SPECIAL.length)]! : (rnd() - 0.3) * 10 ** int(6);
      received += int(2_000);
      const at = rnd() < 0.1 ? undefined : received;
      sent.push({ id, ts, values });
      assert.equal(mine.add(id, ts, values, offset, at), ref.add(id, ts, values, offset, at), where);
    }
    if (rnd() < 0.2 || i === s.readings - 1) {
      assert.deepEqual(plain(mine.drainClosed()), plain(ref.drainClosed()), where);
      assert.deepEqual(mine.drainFloorChanges(), ref.drainFloorChanges(), where);
      assert.deepEqual(mine.commitPoint(offset + 1n), ref.commitPoint(offset + 1n), where);
    }
    assert.equal(mine.clock, ref.clock, where);
    assert.equal(mine.openWindows(), ref.openWindows(), where);
    assert.equal(mine.vehicles(), ref.vehicles(), where);
    assert.equal(mine.floors(), ref.floors(), where);
    for (const id of ids) assert.equal(mine.vehicleTime(id), ref.vehicleTime(id), where);
  }
  const end = BigInt(s.readings);
  assert.equal(mine.closeAll(end), ref.closeAll(end));
  assert.deepEqual(plain(mine.drainClosed()), plain(ref.drainClosed()));
  assert.deepEqual(mine.drainFloorChanges(), ref.drainFloorChanges());
  assert.deepEqual(mine.commitPoint(end + 1n), ref.commitPoint(end + 1n));
}

test('the packed store decides and emits exactly as the Map-based state did, features bit for bit', () => {
  fc.assert(
    fc.property(scenarioArb, (s) => run(s)),
    { numRuns: 150 },
  );
});

test('table: a few hundred readings per window definition give the same windows, bit for bit', () => {
  const defs = [windowDef(10_000, 10_000, 2_000), windowDef(10_000, 5_000, 2_000), windowDef(3_000, 1_000, 0)];
  for (const def of defs) {
    for (const seed of [1, 2, 3]) run({ seed, def, readings: 400, vehicles: 3, idleMs: 20_000, resume: false });
  }
});

test('many vehicles: windows emitted after the store spans and releases several chunks are the same', () => {
  // > 1,024 rows live at once, so rows and links span chunks and chunks are released as windows close.
  run({ seed: 42, def: windowDef(10_000, 5_000, 2_000), readings: 6_000, vehicles: 300, idleMs: 0, resume: false });
});
