import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScoreRecord } from '@pitwall/common';
import { createFleetView, createIncidentStore, vehicleHealth } from '../src/state.js';
import { incident } from '@pitwall/common/testing';

const score = (over: Partial<ScoreRecord> = {}): ScoreRecord => ({
  vehicle_id: 'car-0007',
  window_start: 1_000,
  window_end: 11_000,
  score: 0.5,
  threshold: 3,
  anomalous: false,
  alert_id: null,
  model_name: 'pitwall-ae',
  model_version: '1',
  contributors: [],
  scored_at: 12_000,
  ...over,
});

test('incident store keeps the highest revision; replays never roll back', () => {
  const store = createIncidentStore();
  assert.equal(store.apply(incident({ revision: 2, status: 'ACKNOWLEDGED' })), true);
  assert.equal(store.apply(incident({ revision: 1, status: 'OPEN' })), false);
  assert.equal(store.apply(incident({ revision: 2, status: 'OPEN' })), false);
  assert.equal(store.get('inc-1')?.status, 'ACKNOWLEDGED');
  assert.equal(store.apply(incident({ revision: 3, status: 'RESOLVED', closed_at: 5 })), true);
  assert.equal(store.get('inc-1')?.status, 'RESOLVED');
  assert.equal(store.remove('inc-1')?.incident_id, 'inc-1');
  assert.equal(store.get('inc-1'), undefined);
  assert.deepEqual(store.forVehicle('car-0007'), []);
});

test('list: open ones first, closed ones only while recent', () => {
  const store = createIncidentStore();
  store.apply(incident({ incident_id: 'old-closed', status: 'CLEARED', closed_at: 1_000, updated_at: 1_000 }));
  store.apply(incident({ incident_id: 'recent-closed', status: 'RESOLVED', closed_at: 9_000, updated_at: 9_000 }));
  store.apply(incident({ incident_id: 'open', status: 'OPEN', updated_at: 2_000 }));
  store.apply(incident({ incident_id: 'acked', status: 'ACKNOWLEDGED', updated_at: 3_000 }));
  assert.deepEqual(
    store.list(10_000, 5_000, 10).map((i) => i.incident_id),
    ['acked', 'open', 'recent-closed'],
  );
  assert.deepEqual(
    store.list(10_000, 5_000, 1).map((i) => i.incident_id),
    ['acked'],
  );
});

test('vehicle health', () => {
  const cases: [boolean, string[], string][] = [
    [false, [], 'unknown'],
    [true, [], 'ok'],
    [true, ['LOW'], 'attention'],
    [false, ['MEDIUM'], 'attention'],
    [true, ['LOW', 'HIGH'], 'critical'],
    [true, ['CRITICAL'], 'critical'],
  ];
  for (const [scored, sev, expected] of cases) {
    assert.equal(
      vehicleHealth(
        scored,
        sev.map((severity) => ({ severity: severity as 'LOW' })),
      ),
      expected,
      `${scored} ${sev}`,
    );
  }
});

test('fleet view: latest window per vehicle, health from open incidents', () => {
  const incidents = createIncidentStore();
  const fleet = createFleetView(incidents);
  assert.equal(fleet.applyScore(score({ window_end: 20_000, score: 1 })), true);
  assert.equal(fleet.applyScore(score({ window_end: 10_000, score: 9 })), false, 'an older window does not replace a newer one');
  fleet.applyScore(score({ vehicle_id: 'car-0001' }));
  incidents.apply(incident({ incident_id: 'a', vehicle_id: 'car-0007', severity: 'MEDIUM' }));
  incidents.apply(incident({ incident_id: 'b', vehicle_id: 'car-0009', severity: 'CRITICAL' }));
  incidents.apply(incident({ incident_id: 'c', vehicle_id: 'car-0010', status: 'CLEARED' }));
  const s = fleet.summary('car-0007');
  assert.deepEqual({ h: s.health, n: s.open_incidents, top: s.top_severity, score: s.last_score?.score }, { h: 'attention', n: 1, top: 'MEDIUM', score: 1 });
  assert.deepEqual(
    fleet.all().map((v) => [v.vehicle_id, v.health]),
    [
      ['car-0001', 'ok'],
      ['car-0007', 'attention'],
      ['car-0009', 'critical'],
      ['car-0010', 'unknown'],
    ],
  );
  assert.deepEqual(fleet.counts(), { critical: 1, attention: 1, ok: 1, unknown: 1 });
});
