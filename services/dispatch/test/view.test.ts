import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createIncidentView } from '../src/view.js';
import { createRecentSet } from '../src/recent.js';
import { incident } from '@pitwall/common/testing';

test('only a higher revision replaces what is known, whatever the arrival order', () => {
  const view = createIncidentView();
  assert.equal(view.apply(incident({ revision: 2, severity: 'CRITICAL', last_change: 'ESCALATED' })), 'newer');
  assert.equal(view.apply(incident({ revision: 1 })), 'same-or-older');
  assert.equal(view.apply(incident({ revision: 2, severity: 'LOW' })), 'same-or-older');
  assert.deepEqual(view.latest('inc-1'), { revision: 2, open: true });
  assert.equal(view.openFor('car-0007')[0]!.severity, 'CRITICAL');
  assert.equal(view.apply(incident({ revision: 3, status: 'CLEARED', last_change: 'CLEARED', updated_at: 9 })), 'newer');
  assert.deepEqual(view.latest('inc-1'), { revision: 3, open: false });
  assert.deepEqual(view.openFor('car-0007'), []);
  assert.equal(view.apply(incident({ revision: 2 })), 'same-or-older', 'a closed incident is not reopened by a replay');
  assert.deepEqual(view.size(), { incidents: 1, open: 0, vehicles: 1 });
});

test("updatedAt is the latest change of any of the vehicle's incidents, 0 for an unknown vehicle", () => {
  const view = createIncidentView();
  view.apply(incident({ incident_id: 'a', updated_at: 50 }));
  view.apply(incident({ incident_id: 'b', updated_at: 80, status: 'RESOLVED', last_change: 'RESOLVED' }));
  assert.equal(view.updatedAt('car-0007'), 80);
  assert.equal(view.updatedAt('nobody'), 0);
  assert.equal(view.openFor('nobody').length, 0);
});

test('recent set evicts the oldest id beyond capacity', () => {
  const r = createRecentSet(2);
  r.add('a');
  r.add('b');
  r.add('c');
  assert.deepEqual([r.has('a'), r.has('b'), r.has('c')], [false, true, true]);
});
