/**
 * Exactly-once across crashes, as a property of the partition state and its commit rule.
 *
 * A log of readings (several vehicles, disorder beyond the grace period, redeliveries, clock jumps
 * a day ahead, silent vehicles closed by arrival time, ignition offs, idle markers advancing the
 * arrival clock, or closing everything when the vehicle idle time is 0) is processed
 * once without interruption, and once in batches where any batch may "crash": its output is thrown
 * away, as an aborted transaction's is, and a fresh state resumes from the last commit (offset,
 * resume metadata and the floors as committed). Both runs must emit the same windows, each exactly
 * once, and report the same readings late.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SENSOR_NAMES, windowDef, type WindowDef } from '@pitwall/common';
import { NO_RESUME, type Resume } from '../src/partition-state.js';
import { createWindowSetState, type DefinedWindow, type WindowSetState } from '../src/window-set.js';
import { decodeResume, encodeResume } from '../src/commit-metadata.js';

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

interface Entry {
  kind: 'reading' | 'marker';
  vehicleId: string;
  ts: number;
  receivedAt: number;
  ignitionOff: boolean;
  value: number;
}

const defArb = fc.constantFrom(windowDef(10_000, 10_000, 2_000), windowDef(10_000, 5_000, 1_000), windowDef(4_000, 4_000, 0));

const logArb = fc
  .array(
    fc.record({
      marker: fc.integer({ min: 0, max: 60 }).map((x) => x === 0),
      vehicle: fc.constantFrom('a', 'b', 'c', 'd'),
      // Mostly in order, some disorder, rarely far behind or a day ahead.
      skew: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: -3_000, max: 500 }) }, { weight: 2, arbitrary: fc.integer({ min: -40_000, max: -3_000 }) }, { weight: 1, arbitrary: fc.constant(DAY) }),
      gap: fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 600 }) }, { weight: 1, arbitrary: fc.integer({ min: 5_000, max: 40_000 }) }),
      ignitionOff: fc.integer({ min: 0, max: 40 }).map((x) => x === 0),
      redeliver: fc.integer({ min: 0, max: 15 }).map((x) => x === 0),
      value: fc.integer({ min: -100, max: 100 }),
    }),
    { minLength: 20, maxLength: 250 },
  )
  .map((steps) => {
    const log: Entry[] = [];
    let now = T0;
    for (const s of steps) {
      now += s.gap;
      if (s.marker) {
        log.push({ kind: 'marker', vehicleId: '', ts: 0, receivedAt: now, ignitionOff: false, value: 0 });
        continue;
      }
      const entry: Entry = { kind: 'reading', vehicleId: s.vehicle, ts: now + s.skew, receivedAt: now, ignitionOff: s.ignitionOff, value: s.value };
      log.push(entry);
      if (s.redeliver && log.length > 3) log.push({ ...log[log.length - 3]!, receivedAt: now });
    }
    return log;
  });

interface Output {
  windows: string[];
  late: number[];
}

const key = (w: DefinedWindow): string => `${w.def.sizeMs}|${w.vehicleId}|${w.start}|${w.eventCount}|${Array.from(w.features.subarray(0, 3)).join(',')}`;

function step(state: WindowSetState, e: Entry, offset: bigint, late: number[]): void {
  if (e.kind === 'marker') {
    state.idleTick(e.receivedAt, offset);
    return;
  }
  const values = new Float64Array(SENSOR_NAMES.length).fill(e.value);
  const r = state.add(e.vehicleId, e.ts, values, offset, e.receivedAt);
  if (r === 'late') late.push(Number(offset));
  if (e.ignitionOff) state.closeVehicle(e.vehicleId, offset);
}

function uninterrupted(defs: readonly WindowDef[], log: readonly Entry[], idleMs: number): Output {
  const state = createWindowSetState(defs, { vehicleIdleMs: idleMs });
  const out: Output = { windows: [], late: [] };
  log.forEach((e, i) => step(state, e, BigInt(i), out.late));
  out.windows.push(...state.drainClosed().map(key));
  return out;
}

function withCrashes(defs: readonly WindowDef[], log: readonly Entry[], idleMs: number, batchSizes: number[], crashes: boolean[]): Output {
  const out: Output = { windows: [], late: [] };
  let committed: { offset: bigint; resume: Resume; floors: Map<string, number> } = { offset: 0n, resume: NO_RESUME, floors: new Map() };
  const fresh = (): WindowSetState => createWindowSetState(defs, { resume: decodeResume(encodeResume(committed.resume)), floors: new Map(committed.floors), vehicleIdleMs: idleMs });
  let state = fresh();
  let pos = committed.offset;
  let b = 0;
  let crashesLeft = 12;
  while (pos < BigInt(log.length)) {
    const size = batchSizes[b % batchSizes.length]!;
    const crash = crashes[b % crashes.length]! && crashesLeft > 0;
    b++;
    const late: number[] = [];
    const end = pos + BigInt(size) > BigInt(log.length) ? BigInt(log.length) : pos + BigInt(size);
    for (let i = pos; i < end; i++) step(state, log[Number(i)]!, i, late);
    const windows = state.drainClosed().map(key);
    const floorChanges = state.drainFloorChanges();
    if (crash) {
      crashesLeft--;
      state = fresh();
      pos = committed.offset;
      continue;
    }
    out.windows.push(...windows);
    out.late.push(...late);
    const floors = new Map(committed.floors);
    for (const c of floorChanges) {
      if (c.floor === null) floors.delete(c.vehicleId);
      else floors.set(c.vehicleId, c.floor);
    }
    const point = state.commitPoint(end);
    committed = { ...point, floors };
    pos = end;
  }
  return out;
}

for (const [name, extra] of [
  ['', []],
  // WINDOW_SIZES_MS: a second, longer definition alongside (window-set.ts), committed at the earliest of both.
  [' (with a 30 s definition alongside)', [windowDef(30_000, 30_000, 2_000)]],
] as const) {
  test(`crashes at any batch boundary: the same windows, each once, and the same late readings${name}`, () => {
    const seen = { crashes: 0, windows: 0, late: 0, idleCloses: 0 };
    fc.assert(
      fc.property(
        defArb,
        logArb,
        fc.constantFrom(0, 3_000, 20_000),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        (def, log, idleMs, batchSizes, crashes) => {
          const defs = [def, ...extra];
          const expected = uninterrupted(defs, log, idleMs);
          const got = withCrashes(defs, log, idleMs, batchSizes, crashes);
          assert.deepEqual([...got.windows].sort(), [...expected.windows].sort());
          assert.equal(new Set(got.windows).size, got.windows.length, 'no window twice');
          assert.deepEqual(
            [...got.late].sort((x, y) => x - y),
            [...expected.late].sort((x, y) => x - y),
          );
          seen.crashes += crashes.filter(Boolean).length;
          seen.windows += expected.windows.length;
          seen.late += expected.late.length;
          if (idleMs > 0) seen.idleCloses++;
        },
      ),
      { numRuns: 300 },
    );
    assert.ok(seen.crashes > 0 && seen.windows > 0 && seen.late > 0 && seen.idleCloses > 0, JSON.stringify(seen));
  });
}
