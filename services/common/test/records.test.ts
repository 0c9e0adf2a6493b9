import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INCIDENT_STATUSES, isIncidentOpen } from '../src/records.js';

test('an incident is open while OPEN or ACKNOWLEDGED, closed once CLEARED or RESOLVED', () => {
  const table = Object.fromEntries(INCIDENT_STATUSES.map((status) => [status, isIncidentOpen({ status })]));
  assert.deepEqual(table, { OPEN: true, ACKNOWLEDGED: true, CLEARED: false, RESOLVED: false });
});
