import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binOf,
  buildDriftReference,
  createSlidingDrift,
  createVehicleDrift,
  describeDriftProblem,
  driftLayout,
  driftReading,
  featureReference,
  PSI_EPSILON,
  psi,
  summarizeDrift,
} from '../src/drift.js';
import { mulberry32 } from '../src/random.js';

/** Standard normal draws (Box-Muller), seeded. */
function normals(n: number, seed: number, mean = 0, std = 1): Float64Array {
  const rand = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

const countsOf = (edges: number[], values: ArrayLike<number>): number[] => {
  const c = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) c[binOf(edges, values[i]!)]!++;
  return c;
};

test('binOf: (edges[i-1], edges[i]] with open-ended outer bins', () => {
  const edges = [0, 1, 2];
  const table: Array<[number, number]> = [
    [-1e9, 0],
    [0, 0],
    [0.5, 1],
    [1, 1],
    [1.0001, 2],
    [2, 2],
    [3, 3],
    [1e9, 3],
  ];
  for (const [x, bin] of table) assert.equal(binOf(edges, x), bin, `x = ${x}`);
  assert.equal(binOf([], 5), 0);
});

test('featureReference: ten quantile bins of ~10 % each; ties merged; constant feature is one bin', () => {
  const ref = featureReference(normals(10_000, 1));
  assert.equal(ref.edges.length, 9);
  assert.equal(ref.proportions.length, 10);
  for (const p of ref.proportions) assert.ok(Math.abs(p - 0.1) < 0.002, `share ${p}`);
  assert.ok(Math.abs(ref.proportions.reduce((a, b) => a + b, 0) - 1) < 1e-5);

  const tied = featureReference([...new Array<number>(700).fill(0), ...Array.from({ length: 300 }, (_, i) => i + 1)]);
  // 70 % zeros: the edges at 0.1 .. 0.6 merge into one.
  assert.equal(tied.edges[0], 0);
  assert.equal(tied.proportions[0], 0.7);
  assert.equal(tied.proportions.length, tied.edges.length + 1);

  const constant = featureReference(new Array<number>(50).fill(3));
  assert.deepEqual(constant, { edges: [], proportions: [1] });
});

test('psi: table of live distributions against a uniform ten-bin reference', () => {
  const ref = new Array<number>(10).fill(0.1);
  const table: Array<[string, number[], (v: number) => boolean]> = [
    ['identical', new Array<number>(10).fill(100), (v) => Math.abs(v) < 1e-12],
    ['slightly uneven', [110, 90, 100, 100, 105, 95, 100, 100, 100, 100], (v) => v > 0 && v < 0.01],
    ['half the mass moved one bin', [0, 200, 100, 100, 100, 100, 100, 100, 100, 100], (v) => v > 0.25],
    ['all in one bin', [1000, 0, 0, 0, 0, 0, 0, 0, 0, 0], (v) => v > 5 && Number.isFinite(v)],
  ];
  for (const [name, counts, ok] of table) {
    const v = psi(ref, counts)!;
    assert.ok(ok(v), `${name}: PSI ${v}`);
  }
  assert.equal(psi(ref, new Array<number>(10).fill(0)), null, 'no live window: no PSI, not 0');
});

test('psi: an empty bin counts as PSI_EPSILON on either side (finite)', () => {
  // Reference has an empty bin, live has windows there.
  const v = psi([0.5, 0.5, 0], [40, 40, 20])!;
  const expected = (0.4 - 0.5) * Math.log(0.4 / 0.5) * 2 + (0.2 - PSI_EPSILON) * Math.log(0.2 / PSI_EPSILON);
  assert.ok(Math.abs(v - expected) < 1e-12, `${v} vs ${expected}`);
  // Live has an empty bin.
  const w = psi([0.5, 0.5], [10, 0])!;
  const expectedW = (1 - 0.5) * Math.log(1 / 0.5) + (PSI_EPSILON - 0.5) * Math.log(PSI_EPSILON / 0.5);
  assert.ok(Math.abs(w - expectedW) < 1e-12);
});

test('psi of samples: same distribution ~0, shifted by 1 std > 0.25, scaled x2 > 0.25', () => {
  const ref = featureReference(normals(20_000, 11));
  const table: Array<[string, Float64Array, (v: number) => boolean]> = [
    ['same distribution, other seed', normals(20_000, 12), (v) => v < 0.01],
    ['shifted by 0.2 std', normals(20_000, 13, 0.2), (v) => v > 0.02 && v < 0.1],
    ['shifted by 1 std', normals(20_000, 14, 1), (v) => v > 0.25],
    ['std x2', normals(20_000, 15, 0, 2), (v) => v > 0.25],
  ];
  for (const [name, live, ok] of table) {
    const v = psi(ref.proportions, countsOf(ref.edges, live))!;
    assert.ok(ok(v), `${name}: PSI ${v}`);
  }
});

test('driftReading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant', () => {
  const table: Array<[number, string]> = [
    [0, 'stable'],
    [0.0999, 'stable'],
    [0.1, 'moderate'],
    [0.25, 'moderate'],
    [0.2501, 'significant'],
    [3, 'significant'],
  ];
  for (const [v, r] of table) assert.equal(driftReading(v), r, String(v));
});

test('layout: flat bins per window, drift per feature highest first, summary', () => {
  const train = Array.from({ length: 5_000 }, (_, i) => [normals(1, i * 3 + 1)[0]!, (i % 100) / 100, 7]);
  const reference = buildDriftReference(train);
  assert.equal(describeDriftProblem(reference, 3), undefined);
  const layout = driftLayout(reference, ['a', 'b', 'c']);
  assert.equal(layout.size, 10 + 10 + 1);
  const out = new Uint16Array(3);
  const counts = new Uint32Array(layout.size);
  // Live: a like training, b shifted to its top bin, c unchanged.
  for (let i = 0; i < 2_000; i++) for (const b of layout.bin([normals(1, 100_000 + i)[0]!, 0.995, 7], out)) counts[b]!++;
  const drift = layout.drift(counts);
  assert.deepEqual(
    drift.map((d) => d.feature),
    ['b', 'a', 'c'],
  );
  assert.equal(drift[0]!.reading, 'significant');
  assert.ok(drift[1]!.psi < 0.05, `a: ${drift[1]!.psi}`);
  assert.equal(drift[2]!.psi, 0);
  const s = summarizeDrift(drift, 2_000, 2);
  assert.equal(s.significant, 1);
  assert.equal(s.reading, 'significant');
  assert.equal(s.top.length, 2);
  assert.deepEqual(summarizeDrift([], 0), { windows: 0, max_psi: null, reading: null, significant: 0, top: [] });
});

test('describeDriftProblem names what is wrong', () => {
  const good = { bins: 10, method: 'x', features: [{ edges: [0], proportions: [0.5, 0.5] }] };
  const table: Array<[unknown, RegExp | undefined]> = [
    [good, undefined],
    [null, /drift must be/],
    [{ ...good, bins: 1 }, /bins/],
    [{ ...good, features: [] }, /one entry per feature/],
    [{ ...good, features: [{ edges: [0], proportions: [1] }] }, /1 edges and 1 proportions/],
    [{ ...good, features: [{ edges: [1, 0], proportions: [0.3, 0.3, 0.4] }] }, /increasing/],
    [{ ...good, features: [{ edges: [0], proportions: [0.5, 0.6] }] }, /sum to/],
  ];
  for (const [raw, want] of table) {
    const p = describeDriftProblem(raw, 1);
    if (want === undefined) assert.equal(p, undefined);
    else assert.match(p ?? '', want);
  }
});

test('sliding period: windows leave with their bucket; memory is the ring only', () => {
  const s = createSlidingDrift({ size: 2 }, { periodMs: 60_000, buckets: 6 });
  const a = Uint16Array.of(0);
  const b = Uint16Array.of(1);
  s.add(a, 0);
  s.add(a, 9_999);
  s.add(b, 10_000);
  assert.deepEqual([...s.counts(10_000).counts], [2, 1]);
  assert.equal(s.counts(59_999).windows, 3);
  // At 60 s the first bucket [0, 10 s) has left the period.
  assert.deepEqual([...s.counts(60_000).counts], [0, 1]);
  assert.equal(s.counts(70_000).windows, 0);
  // A bucket slot reused after a full turn starts from zero.
  s.add(b, 120_000);
  assert.deepEqual([...s.counts(120_000).counts], [0, 1]);
});

test('per vehicle: last K windows in two blocks, least recently seen evicted beyond the cap', () => {
  const v = createVehicleDrift({ size: 2 }, { windows: 4, maxVehicles: 2 });
  const a = Uint16Array.of(0);
  const b = Uint16Array.of(1);
  v.add('car1', a);
  v.add('car1', a);
  assert.deepEqual(v.counts('car1'), { counts: Uint16Array.of(2, 0), windows: 2 });
  v.add('car1', b);
  v.add('car1', b);
  assert.deepEqual(v.counts('car1'), { counts: Uint16Array.of(2, 2), windows: 4 });
  // The fifth window drops the oldest block of two.
  v.add('car1', b);
  assert.deepEqual(v.counts('car1'), { counts: Uint16Array.of(0, 3), windows: 3 });
  assert.deepEqual(v.takeChanged(), ['car1']);
  assert.deepEqual(v.takeChanged(), []);
  v.add('car2', a);
  v.add('car1', a); // car1 seen more recently than car2
  v.add('car3', a); // evicts car2
  assert.equal(v.size(), 2);
  assert.equal(v.counts('car2'), undefined);
  assert.ok(v.counts('car1'));
  assert.deepEqual(v.takeChanged().sort(), ['car1', 'car3']);
});
