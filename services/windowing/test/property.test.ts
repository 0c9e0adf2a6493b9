/**
 * Property tests of the partition state against a plain batch computation.
 *
 * Event time is per vehicle: a vehicle's watermark is the greatest event time it has sent.
 * Property 1: whatever the arrival order, as long as every event arrives while all its windows are
 * still open (disorder bounded by the grace period) and whatever exact duplicates are redelivered,
 * the emitted windows equal, record for record, the windows computed in one batch over the
 * deduplicated events.
 * Property 2: when arrivals exceed the grace period, an event is reported 'late' exactly when every
 * window containing it had already closed for its vehicle, and each emitted window holds exactly
 * the events that arrived while it was open.
 * Both: after every drainClosed, the windows emitted so far are exactly those their vehicle's
 * watermark has closed (none early, none held back), each drain oldest first.
 *
 * Window membership in the reference is computed by brute force (every multiple of `advance`
 * checked against [start, start + size)), independently of windowStartsFor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { computeFeatures, SENSOR_NAMES, windowDef, type WindowDef, type WindowEvent } from '@pitwall/common';
import { createPartitionState, type AddResult, type ClosedWindow } from '../src/partition-state.js';

const NUM_RUNS = 200;
/** A realistic epoch-ms origin; deliberately not a multiple of most generated advances. */
const T0 = 1_700_000_123_456;
const VEHICLES = ['v0', 'v1', 'v2', 'v3'] as const;

interface Event {
  vehicleId: string;
  ts: number;
  values: Float64Array;
}

/** One delivery of an event (the original or an exact redelivery). */
interface Arrival {
  event: Event;
  /** Position key in the arrival order (ties broken by `tie`). */
  at: number;
  tie: number;
}

/** Reference window contents, keyed by `${vehicleId}|${start}`; events keyed by ts (first arrival kept). */
type Groups = Map<string, { vehicleId: string; start: number; events: Map<number, WindowEvent> }>;

interface WindowRecord {
  vehicleId: string;
  start: number;
  end: number;
  eventCount: number;
  features: Float64Array;
}

const defArb: fc.Arbitrary<WindowDef> = fc
  .record({
    size: fc.integer({ min: 1, max: 40 }).map((x) => x * 250),
    hopping: fc.boolean(),
    // Hopping advance: size/k (k in 2..6) or any value >= size/6, so an event lies in at most 7 windows.
    advanceSeed: fc.oneof(
      fc.integer({ min: 2, max: 6 }).map((k) => ({ k })),
      fc.nat().map((n) => ({ n })),
    ),
    grace: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5_000 })),
  })
  .map(({ size, hopping, advanceSeed, grace }) => {
    if (!hopping) return windowDef(size, size, grace);
    const lo = Math.ceil(size / 6);
    const advance = 'k' in advanceSeed ? Math.max(1, Math.floor(size / advanceSeed.k)) : lo + (advanceSeed.n % (size - lo));
    return windowDef(size, advance, grace);
  });

/** Delay choice: 'min' (none), 'max' (the largest allowed) or an arbitrary number reduced modulo the bound. */
const delayArb = fc.oneof(fc.constant<'min'>('min'), fc.constant<'max'>('max'), fc.nat());
type DelaySeed = 'min' | 'max' | number;
const pickDelay = (seed: DelaySeed, max: number): number => (seed === 'min' ? 0 : seed === 'max' ? max : seed % (max + 1));

const valuesArb = fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: SENSOR_NAMES.length, maxLength: SENSOR_NAMES.length }).map((xs) => Float64Array.from(xs));

/** Events with unique (vehicle, ts), each with a delay seed, plus redeliveries of some of them. */
function scenarioArb(def: WindowDef) {
  const span = 4 * def.sizeMs + 2 * def.graceMs;
  const eventArb = fc.record({
    vehicleId: fc.constantFrom(...VEHICLES),
    ts: fc.oneof(
      fc.integer({ min: 0, max: span }).map((x) => T0 + x),
      // Just at or before a window start, end or closing point: where off-by-one mistakes show.
      fc
        .tuple(fc.nat({ max: Math.floor(span / def.advanceMs) }), fc.constantFrom(0, def.sizeMs, def.sizeMs + def.graceMs), fc.constantFrom(0, -1))
        .map(([m, at, d]) => (Math.floor(T0 / def.advanceMs) + m) * def.advanceMs + at + d),
    ),
    values: valuesArb,
    delay: delayArb,
    tie: fc.nat(),
  });
  return fc.record({
    def: fc.constant(def),
    events: fc.uniqueArray(eventArb, { minLength: 1, maxLength: 80, size: 'medium', selector: (e) => `${e.vehicleId}|${e.ts}` }),
    redeliveries: fc.array(fc.record({ index: fc.nat(), delay: delayArb, tie: fc.nat() }), { maxLength: 20, size: 'medium' }),
    drainAfter: fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
  });
}

type Scenario = ReturnType<typeof scenarioArb> extends fc.Arbitrary<infer S> ? S : never;

/** Starts of every window [s, s + size) with s a multiple of advance that contains ts (brute force). */
function containingStarts(def: WindowDef, ts: number): number[] {
  const starts: number[] = [];
  for (let k = Math.floor((ts - def.sizeMs) / def.advanceMs); k * def.advanceMs <= ts; k++) {
    const s = k * def.advanceMs;
    if (s <= ts && ts < s + def.sizeMs) starts.push(s);
  }
  return starts;
}

const isClosed = (def: WindowDef, start: number, watermark: number): boolean => watermark >= start + def.sizeMs + def.graceMs;

/** Arrival order: by `at`, ties by `tie`, then by generation order (stable sort). */
function arrivalOrder(s: Scenario, maxDelay: (e: Event) => number): Arrival[] {
  const events: Event[] = s.events.map(({ vehicleId, ts, values }) => ({ vehicleId, ts, values }));
  const arrivals: Arrival[] = s.events.map((g, i) => ({ event: events[i]!, at: g.ts + pickDelay(g.delay, maxDelay(events[i]!)), tie: g.tie }));
  for (const r of s.redeliveries) {
    const e = events[r.index % events.length]!;
    const copy: Event = { vehicleId: e.vehicleId, ts: e.ts, values: Float64Array.from(e.values) };
    arrivals.push({ event: copy, at: e.ts + pickDelay(r.delay, maxDelay(e)), tie: r.tie });
  }
  return arrivals.sort((a, b) => a.at - b.at || a.tie - b.tie);
}

const byStartThenVehicle = (a: WindowRecord, b: WindowRecord): number => a.start - b.start || (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : 0);

const plain = (w: ClosedWindow): WindowRecord => ({ vehicleId: w.vehicleId, start: w.start, end: w.end, eventCount: w.eventCount, features: w.features });

/** Reference: group events by (vehicle, window start) and compute each group's features in one go. */
function batchWindows(def: WindowDef, groups: Groups): WindowRecord[] {
  return [...groups.values()]
    .map((g) => ({
      vehicleId: g.vehicleId,
      start: g.start,
      end: g.start + def.sizeMs,
      eventCount: g.events.size,
      features: computeFeatures([...g.events.values()]),
    }))
    .sort(byStartThenVehicle);
}

/** Adds e to the reference window; false when that window already holds e's event time. */
function addToGroup(groups: Groups, e: Event, start: number): boolean {
  const key = `${e.vehicleId}|${start}`;
  let g = groups.get(key);
  if (!g) groups.set(key, (g = { vehicleId: e.vehicleId, start, events: new Map() }));
  if (g.events.has(e.ts)) return false;
  g.events.set(e.ts, { ts: e.ts, values: e.values });
  return true;
}

interface Drain {
  /** Per vehicle, its watermark (greatest event time so far) when drainClosed was called; null: the final flush. */
  watermarks: ReadonlyMap<string, number> | null;
  windows: WindowRecord[];
}

const wmOf = (wms: ReadonlyMap<string, number>, vehicleId: string): number => wms.get(vehicleId) ?? Number.NEGATIVE_INFINITY;

/** Feeds the arrivals through a partition state, draining where the scenario says, then flushes every open window. */
function runState(s: Scenario, arrivals: readonly Arrival[]): { results: AddResult[]; emitted: WindowRecord[]; drains: Drain[] } {
  const state = createPartitionState(s.def);
  const results: AddResult[] = [];
  const drains: Drain[] = [];
  const wms = new Map<string, number>();
  const drain = (final = false) => drains.push({ watermarks: final ? null : new Map(wms), windows: state.drainClosed().map(plain) });
  arrivals.forEach((a, i) => {
    results.push(state.add(a.event.vehicleId, a.event.ts, a.event.values, BigInt(i)));
    wms.set(a.event.vehicleId, Math.max(wmOf(wms, a.event.vehicleId), a.event.ts));
    if (s.drainAfter[i % s.drainAfter.length]) drain();
  });
  state.closeAll(BigInt(arrivals.length));
  drain(true);
  return { results, emitted: drains.flatMap((d) => d.windows), drains };
}

/**
 * Emission timing and order: after each drain, the windows emitted so far are exactly the expected
 * windows closed by their vehicle's watermark at that moment (none early, none held back), each
 * drain oldest first; the final flush emits the rest.
 */
function assertEmittedOnTime(def: WindowDef, drains: readonly Drain[], expected: readonly WindowRecord[]): void {
  const key = (w: WindowRecord) => `${w.vehicleId}|${w.start}`;
  const emitted = new Set<string>();
  for (const d of drains) {
    assert.deepEqual(d.windows, [...d.windows].sort(byStartThenVehicle), 'each drain is oldest first');
    for (const w of d.windows) emitted.add(key(w));
    const due = expected.filter((w) => d.watermarks === null || isClosed(def, w.start, wmOf(d.watermarks, w.vehicleId))).map(key);
    assert.deepEqual([...emitted].sort(), due.sort(), `windows emitted by watermarks ${d.watermarks ? JSON.stringify([...d.watermarks]) : 'final'}`);
  }
}

const scenarios = defArb.chain(scenarioArb);

test('arrivals within the grace period, with redeliveries: emitted windows equal the batch computation', () => {
  const seen = { hopping: 0, outOfOrder: 0, duplicates: 0, emitted: 0 };
  fc.assert(
    fc.property(scenarios, (s) => {
      // Latest arrival that keeps every window of e open: the watermark must stay below the end of
      // e's earliest window + grace, and the watermark never exceeds the arrival key.
      const maxDelay = (e: Event): number => containingStarts(s.def, e.ts)[0]! + s.def.sizeMs + s.def.graceMs - 1 - e.ts;
      const arrivals = arrivalOrder(s, maxDelay);
      const { results, emitted, drains } = runState(s, arrivals);

      const groups: Groups = new Map();
      const firstSeen = new Set<string>();
      const wms = new Map<string, number>();
      arrivals.forEach((a, i) => {
        const key = `${a.event.vehicleId}|${a.event.ts}`;
        assert.equal(results[i], firstSeen.has(key) ? 'duplicate' : 'added', `arrival ${i} (${key})`);
        if (a.event.ts < wmOf(wms, a.event.vehicleId)) seen.outOfOrder++;
        if (firstSeen.has(key)) seen.duplicates++;
        firstSeen.add(key);
        wms.set(a.event.vehicleId, Math.max(wmOf(wms, a.event.vehicleId), a.event.ts));
        for (const start of containingStarts(s.def, a.event.ts)) addToGroup(groups, a.event, start);
      });
      assert.ok(!results.includes('late'), 'no event is late when disorder stays within the grace period');
      const expected = batchWindows(s.def, groups);
      assert.deepEqual([...emitted].sort(byStartThenVehicle), expected);
      assertEmittedOnTime(s.def, drains, expected);
      if (s.def.advanceMs < s.def.sizeMs) seen.hopping++;
      seen.emitted += emitted.length;
    }),
    { numRuns: NUM_RUNS },
  );
  // The generators must actually exercise what the property is about.
  assert.ok(seen.hopping > 0 && seen.outOfOrder > 0 && seen.duplicates > 0 && seen.emitted > 0, JSON.stringify(seen));
});

test('arrivals beyond the grace period: late exactly when every window of the event had closed', () => {
  const seen = { late: 0, onTime: 0, partlyClosed: 0 };
  fc.assert(
    fc.property(scenarios, (s) => {
      // Delays up to three window lengths past the grace period: many events miss some or all windows.
      const bound = 3 * (s.def.sizeMs + s.def.graceMs);
      const arrivals = arrivalOrder(s, () => bound);
      const { results, emitted, drains } = runState(s, arrivals);

      // Reference model: an arrival joins each of its windows still open under the watermark of its
      // vehicle's events that arrived before it; it is late when none is open.
      const groups: Groups = new Map();
      const wms = new Map<string, number>();
      arrivals.forEach((a, i) => {
        const watermark = wmOf(wms, a.event.vehicleId);
        const starts = containingStarts(s.def, a.event.ts);
        const open = starts.filter((start) => !isClosed(s.def, start, watermark));
        let expected: AddResult = 'late';
        for (const start of open) {
          if (addToGroup(groups, a.event, start)) expected = 'added';
          else if (expected === 'late') expected = 'duplicate';
        }
        assert.equal(results[i], expected, `arrival ${i} (${a.event.vehicleId}|${a.event.ts}) at watermark ${watermark}`);
        if (expected === 'late') seen.late++;
        else seen.onTime++;
        if (open.length > 0 && open.length < starts.length) seen.partlyClosed++;
        wms.set(a.event.vehicleId, Math.max(watermark, a.event.ts));
      });
      const expected = batchWindows(s.def, groups);
      assert.deepEqual([...emitted].sort(byStartThenVehicle), expected);
      assertEmittedOnTime(s.def, drains, expected);
    }),
    { numRuns: NUM_RUNS },
  );
  assert.ok(seen.late > 0 && seen.onTime > 0 && seen.partlyClosed > 0, JSON.stringify(seen));
});
