import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANSI, applyLatest, formatAge, formatIncidentChange, formatIncidentTable, parseCliArgs, selectIncidents } from '../src/cli/format.js';
import type { IncidentRecord } from '@pitwall/common';
import { incident } from '@pitwall/common/testing';

test('ages', () => {
  const rows: [number, string][] = [
    [-5_000, '0s'],
    [0, '0s'],
    [42_900, '42s'],
    [7 * 60_000 + 5_000, '7m05s'],
    [3 * 3_600_000 + 12 * 60_000, '3h12m'],
    [2 * 86_400_000 + 4 * 3_600_000, '2d04h'],
  ];
  for (const [ms, text] of rows) assert.equal(formatAge(ms), text, String(ms));
});

test('options', () => {
  assert.deepEqual(parseCliArgs([]), { follow: false, all: false, json: false, help: false });
  assert.deepEqual(parseCliArgs(['--follow', '--all']), { follow: true, all: true, json: false, help: false });
  assert.deepEqual(parseCliArgs(['-h']), { follow: false, all: false, json: false, help: true });
  assert.throws(() => parseCliArgs(['--topic', 'x']), /Unknown option '--topic'/);
  assert.throws(() => parseCliArgs(['extra']), /positional/i);
});

test('the latest revision wins', () => {
  const known = new Map<string, IncidentRecord>();
  assert.equal(applyLatest(known, incident({ revision: 2 })), true);
  assert.equal(applyLatest(known, incident({ revision: 1 })), false);
  assert.equal(applyLatest(known, incident({ revision: 2 })), false);
  assert.equal(known.get('inc-1')!.revision, 2);
});

test('selection: open only unless --all; open first, most severe first, then oldest', () => {
  const list = [
    incident({ incident_id: 'low-old', severity: 'LOW', opened_at: 1 }),
    incident({ incident_id: 'closed', severity: 'CRITICAL', status: 'CLEARED' }),
    incident({ incident_id: 'crit', severity: 'CRITICAL', opened_at: 5 }),
    incident({ incident_id: 'high-new', severity: 'HIGH', opened_at: 9, status: 'ACKNOWLEDGED' }),
    incident({ incident_id: 'high-old', severity: 'HIGH', opened_at: 3 }),
  ];
  assert.deepEqual(
    selectIncidents(list, false).map((i) => i.incident_id),
    ['crit', 'high-old', 'high-new', 'low-old'],
  );
  assert.deepEqual(
    selectIncidents(list, true).map((i) => i.incident_id),
    ['crit', 'high-old', 'high-new', 'low-old', 'closed'],
  );
});

test('table: the columns, aligned, with delivered and acked-by', () => {
  const now = 1_700_000_000_000 + 600_000;
  const table = formatIncidentTable(
    [
      incident({ vehicle_id: 'car-0007', delivered_at: now - 30_000 }),
      incident({ incident_id: 'x', vehicle_id: 'car-12', area: 'tires', severity: 'LOW', status: 'ACKNOWLEDGED', acknowledged_by: 'ana', opened_at: now - 3_700_000 }),
    ],
    now,
  );
  assert.equal(
    table,
    [
      'VEHICLE   AREA     SEVERITY  STATUS        AGE     DELIVERED  ACKED BY',
      'car-0007  cooling  HIGH      OPEN          10m00s  30s ago    -',
      'car-12    tires    LOW       ACKNOWLEDGED  1h01m   -          ana',
    ].join('\n'),
  );
  assert.match(formatIncidentTable([], now), /\(no incidents\)/);
});

test('styled table keeps the plain text', () => {
  const now = 1_700_000_600_000;
  // eslint-disable-next-line no-control-regex -- ESC starts the ANSI colour codes this strips
  const strip = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');
  const list = [incident({ severity: 'CRITICAL' }), incident({ incident_id: 'c', status: 'CLEARED' })];
  const styled = formatIncidentTable(list, now, ANSI);
  assert.notEqual(styled, formatIncidentTable(list, now));
  assert.equal(strip(styled), formatIncidentTable(list, now));
});

test('change line names vehicle, area, severity, status, change, revision, delivery and ack', () => {
  const line = formatIncidentChange(incident({ revision: 4, last_change: 'ACKNOWLEDGED', status: 'ACKNOWLEDGED', acknowledged_by: 'ana', delivered_at: 1_700_000_061_000 }));
  assert.equal(line, '2023-11-14T22:14:20.000Z car-0007 cooling HIGH ACKNOWLEDGED ACKNOWLEDGED r4 delivered=2023-11-14T22:14:21.000Z acked_by=ana inc-1');
});
