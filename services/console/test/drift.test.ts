import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDriftView } from '../src/drift.js';

const fleetRecord = (over: Record<string, unknown> = {}) => ({
  schema: 'pitwall.drift.fleet.v1',
  model: 'pitwall-ae',
  version: '1',
  role: 'active',
  instance: 'r1',
  at: 1_000,
  period_ms: 900_000,
  available: true,
  windows: 100,
  features: ['a', 'b'],
  counts: [
    [50, 50],
    [100, 0],
  ],
  proportions: [
    [0.5, 0.5],
    [0.5, 0.5],
  ],
  ...over,
});

test('fleet: replicas are combined by summing their counts, then PSI is computed once', () => {
  const view = createDriftView({ now: () => 1_000, staleMs: 300_000 });
  assert.equal(view.apply(fleetRecord()), true);
  // Replica 2 saw b the other way round: together b is exactly like the training data.
  assert.equal(
    view.apply(
      fleetRecord({
        instance: 'r2',
        counts: [
          [50, 50],
          [0, 100],
        ],
      }),
    ),
    true,
  );
  const [d] = view.fleet();
  assert.equal(d!.replicas, 2);
  assert.equal(d!.windows, 200);
  assert.equal(d!.max_psi, 0);
  assert.equal(d!.reading, 'stable');
});

test('fleet: one replica with all of b in one bin reads significant; stale replicas and older versions are left out', () => {
  let now = 1_000;
  const view = createDriftView({ now: () => now, staleMs: 300_000 });
  view.apply(fleetRecord());
  view.apply(
    fleetRecord({
      instance: 'old',
      at: -400_000,
      counts: [
        [0, 100],
        [0, 100],
      ],
    }),
  );
  view.apply(
    fleetRecord({
      instance: 'r3',
      version: '0',
      at: 900,
      counts: [
        [0, 100],
        [0, 100],
      ],
    }),
  );
  const [d] = view.fleet();
  assert.equal(d!.replicas, 1);
  assert.equal(d!.top[0]!.feature, 'b');
  assert.equal(d!.reading, 'significant');
  assert.equal(d!.significant, 1);
  assert.ok(Math.abs(d!.top[0]!.psi - (0.5 * Math.log(1 / 0.5) + (1e-4 - 0.5) * Math.log(1e-4 / 0.5))) < 1e-12);
  now = 400_000;
  assert.deepEqual(view.fleet(), [], 'every record stale');
});

test('fleet: a model without a reference is unavailable, not zero', () => {
  const view = createDriftView({ now: () => 1_000, staleMs: 300_000 });
  view.apply({ schema: 'pitwall.drift.fleet.v1', model: 'imported', version: '3', role: 'active', instance: 'r1', at: 1_000, period_ms: 1, available: false, windows: 10 });
  const [d] = view.fleet();
  assert.equal(d!.available, false);
  assert.equal(d!.max_psi, null);
  assert.equal(d!.reading, null);
});

test('records that do not have the expected shape are refused', () => {
  const view = createDriftView({ now: () => 1_000, staleMs: 300_000 });
  const table: unknown[] = [
    null,
    'x',
    { schema: 'other' },
    fleetRecord({ role: 'boss' }),
    fleetRecord({ counts: [[1, 2]] }),
    fleetRecord({ counts: [[1], [1, 2]] }),
    fleetRecord({ proportions: [[0.5, 'x'], [1]] }),
    { schema: 'pitwall.drift.vehicle.v1', vehicle_id: '<script>', model: 'm', version: '1', at: 1, windows: 1, significant: 0, max_psi: 0, top: [] },
    { schema: 'pitwall.drift.vehicle.v1', vehicle_id: 'car-1', model: 'm', version: '1', at: 1, windows: 1, significant: 0, max_psi: 0, top: [{ feature: 'a' }] },
  ];
  for (const r of table) assert.equal(view.apply(r), false, JSON.stringify(r));
  assert.deepEqual(view.fleet(), []);
});

test('vehicle: the latest record per vehicle; its reading recomputed from the PSI', () => {
  const view = createDriftView({ now: () => 1_000, staleMs: 300_000 });
  const rec = (at: number, psi: number) => ({
    schema: 'pitwall.drift.vehicle.v1',
    vehicle_id: 'car-1',
    model: 'm',
    version: '1',
    at,
    windows: 60,
    significant: psi > 0.25 ? 1 : 0,
    max_psi: psi,
    reading: 'stable',
    top: [{ feature: 'a', psi, reading: 'stable' }],
  });
  assert.equal(view.apply(rec(2, 0.4)), true);
  assert.equal(view.apply(rec(1, 0.01)), true, 'an older record is understood, and ignored');
  const v = view.vehicle('car-1')!;
  assert.equal(v.max_psi, 0.4);
  assert.equal(v.reading, 'significant');
  assert.equal(v.top[0]!.reading, 'significant');
  assert.equal(view.vehicle('car-2'), null);
  view.apply({ ...rec(3, 8), vehicle_id: 'car-2' });
  view.apply({ ...rec(3, 9), vehicle_id: 'car-3' });
  assert.deepEqual(view.vehicles(), { vehicles: 3, median_max_psi: 8 });
});
