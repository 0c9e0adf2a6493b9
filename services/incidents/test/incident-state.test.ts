import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUP_ACTIONS, type Contributor, type IncidentCommandRecord, type IncidentRecord, type ReceiptRecord, type ScoreRecord } from '@pitwall/common';
import { apply, areaOf, createIncidentState, HISTORY_LIMIT, incidentId, load, severityFor, type IncidentState, type Input } from '../src/incident-state.js';

const W = 10_000;
const T0 = 1_700_000_000_000;
const NOW = 1_800_000_000_000;

const contributor = (sensor: string, share: number): Contributor => ({ sensor, share, component: 'c', action: 'a' });
const TIRES = [contributor('tire_pressure_1_1', 0.6), contributor('coolant_temp', 0.3)];
const COOLING = [contributor('coolant_temp', 0.7), contributor('tire_pressure_1_1', 0.2)];

/** Window i of a vehicle: [T0 + i*W, T0 + (i+1)*W). */
function score(i: number, opts: { vehicle?: string; score?: number; threshold?: number; contributors?: Contributor[]; anomalous?: boolean } = {}): Input {
  const threshold = opts.threshold ?? 1;
  const s = opts.score ?? (opts.anomalous === false ? 0.5 : 1.2);
  const record: ScoreRecord = {
    vehicle_id: opts.vehicle ?? 'car-1',
    window_start: T0 + i * W,
    window_end: T0 + (i + 1) * W,
    score: s,
    threshold,
    anomalous: opts.anomalous ?? s > threshold,
    alert_id: null,
    model_name: 'ae',
    model_version: '1',
    contributors: opts.contributors ?? TIRES,
    scored_at: T0 + (i + 1) * W + 500,
  };
  return { kind: 'score', record };
}
const normal = (i: number, vehicle = 'car-1'): Input => score(i, { vehicle, anomalous: false, score: 0.5 });
const command = (incident: string, action: 'ACKNOWLEDGE' | 'RESOLVE', id = `cmd-${action}-${incident}`, extra: Partial<IncidentCommandRecord> = {}): Input => ({
  kind: 'command',
  record: { command_id: id, incident_id: incident, vehicle_id: 'car-1', action, operator: 'olga', note: 'on it', issued_at: T0, ...extra },
});
const receipt = (incident: string, extra: Partial<ReceiptRecord> = {}): Input => ({
  kind: 'receipt',
  record: { vehicle_id: 'car-1', incident_id: incident, revision: 1, received_at: T0 + 1, ingested_at: T0 + 2, ...extra },
});

/** Applies inputs in order (now = NOW + index) and returns every change. */
function run(state: IncidentState, inputs: Input[]): IncidentRecord[] {
  return inputs.flatMap((input, k) => apply(state, input, NOW + k).changes);
}
const fresh = (clearAfterWindows = 6): IncidentState => createIncidentState({ clearAfterWindows });
const summary = (r: IncidentRecord) => `${r.area}:${r.status}:${r.last_change}:${r.severity}:r${r.revision}`;

test('severity table: ratio and persistence, highest matching row wins', () => {
  const table: [ratio: number, windows: number, expected: string][] = [
    [1.01, 1, 'LOW'],
    [1.49, 2, 'LOW'],
    [1.5, 1, 'MEDIUM'],
    [1.1, 3, 'MEDIUM'],
    [2.49, 5, 'MEDIUM'],
    [2.5, 1, 'HIGH'],
    [1.1, 6, 'HIGH'],
    [3.99, 11, 'HIGH'],
    [4, 1, 'CRITICAL'],
    [1.1, 12, 'CRITICAL'],
  ];
  for (const [ratio, n, expected] of table) assert.equal(severityFor(ratio, n), expected, `ratio ${ratio}, ${n} windows`);
});

test('area is the sensor group of the largest known contributor', () => {
  const table: [Contributor[], string | undefined][] = [
    [TIRES, 'tires'],
    [COOLING, 'cooling'],
    [[contributor('battery_voltage', 0.2), contributor('speed', 0.5)], 'drivetrain'],
    [[contributor('no_such_sensor', 0.9), contributor('throttle_pos', 0.1)], 'drivetrain'],
    [[contributor('no_such_sensor', 0.9)], undefined],
    [[], undefined],
  ];
  for (const [cs, expected] of table) assert.equal(areaOf(cs), expected, JSON.stringify(cs));
});

test('the first anomalous window opens an incident with a deterministic id and GROUP_ACTIONS', () => {
  const state = fresh();
  const [opened, ...rest] = run(state, [score(0, { score: 1.2 })]);
  assert.equal(rest.length, 0);
  assert.ok(opened);
  assert.equal(opened.incident_id, incidentId('car-1', 'tires', T0));
  assert.match(opened.incident_id, /^[0-9a-f]{16}$/);
  assert.notEqual(incidentId('car-1', 'tires', T0), incidentId('car-1', 'tires', T0 + W));
  assert.notEqual(incidentId('car-1', 'tires', T0), incidentId('car-2', 'tires', T0));
  assert.notEqual(incidentId('car-1', 'tires', T0), incidentId('car-1', 'cooling', T0));
  assert.deepEqual(
    {
      status: opened.status,
      change: opened.last_change,
      severity: opened.severity,
      revision: opened.revision,
      component: opened.component,
      action: opened.action,
      opened_at: opened.opened_at,
      updated_at: opened.updated_at,
      last_window_end: opened.last_window_end,
      anomalous_windows: opened.anomalous_windows,
      history: opened.history.map((h) => [h.change, h.at, h.score]),
    },
    {
      status: 'OPEN',
      change: 'OPENED',
      severity: 'LOW',
      revision: 1,
      component: GROUP_ACTIONS.tires.component,
      action: GROUP_ACTIONS.tires.action,
      opened_at: T0,
      updated_at: NOW,
      last_window_end: T0 + W,
      anomalous_windows: 1,
      history: [['OPENED', NOW, 1.2]],
    },
  );
});

test('table: sequences of windows and the changes they produce', () => {
  const cases: { name: string; inputs: Input[]; clear?: number; expected: string[] }[] = [
    {
      name: 'persistence escalates LOW -> MEDIUM at 3 windows, HIGH at 6',
      inputs: [0, 1, 2, 3, 4, 5].map((i) => score(i)),
      expected: [
        'tires:OPEN:OPENED:LOW:r1',
        'tires:OPEN:UPDATED:LOW:r2',
        'tires:OPEN:ESCALATED:MEDIUM:r3',
        'tires:OPEN:UPDATED:MEDIUM:r4',
        'tires:OPEN:UPDATED:MEDIUM:r5',
        'tires:OPEN:ESCALATED:HIGH:r6',
      ],
    },
    {
      name: 'a high ratio escalates at once; a lower one later never de-escalates',
      inputs: [score(0, { score: 1.1 }), score(1, { score: 5 }), score(2, { score: 1.1 })],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:ESCALATED:CRITICAL:r2', 'tires:OPEN:UPDATED:CRITICAL:r3'],
    },
    {
      name: 'a duplicate or older window is ignored',
      inputs: [score(0), score(1), score(1), score(0), normal(1)],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:UPDATED:LOW:r2'],
    },
    {
      name: 'normal windows count up and clear at the limit; the next anomaly opens a new incident',
      clear: 3,
      inputs: [score(0), normal(1), normal(2), normal(3), normal(4), score(5)],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:UPDATED:LOW:r2', 'tires:OPEN:UPDATED:LOW:r3', 'tires:CLEARED:CLEARED:LOW:r4', 'tires:OPEN:OPENED:LOW:r1'],
    },
    {
      name: 'an anomalous window resets the normal count',
      clear: 2,
      inputs: [score(0), normal(1), score(2), normal(3), normal(4)],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:UPDATED:LOW:r2', 'tires:OPEN:UPDATED:LOW:r3', 'tires:OPEN:UPDATED:LOW:r4', 'tires:CLEARED:CLEARED:LOW:r5'],
    },
    {
      name: 'an anomalous window of another area counts as normal for this one',
      clear: 2,
      inputs: [score(0), score(1, { contributors: COOLING }), score(2, { contributors: COOLING })],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:UPDATED:LOW:r2', 'cooling:OPEN:OPENED:LOW:r1', 'tires:CLEARED:CLEARED:LOW:r3', 'cooling:OPEN:UPDATED:LOW:r2'],
    },
    {
      name: 'other vehicles do not touch the incident',
      clear: 1,
      inputs: [score(0), normal(1, 'car-2'), score(2, { vehicle: 'car-2' })],
      expected: ['tires:OPEN:OPENED:LOW:r1', 'tires:OPEN:OPENED:LOW:r1'],
    },
    {
      name: 'an anomalous window without a known sensor changes nothing',
      inputs: [score(0, { contributors: [contributor('mystery', 1)] })],
      expected: [],
    },
    {
      name: 'normal windows without an open incident change nothing',
      inputs: [normal(0), normal(1)],
      expected: [],
    },
  ];
  for (const c of cases) {
    const changes = run(fresh(c.clear), c.inputs);
    assert.deepEqual(changes.map(summary), c.expected, c.name);
    // Every record is a whole incident with a history entry per revision (until the bound).
    for (const r of changes) assert.equal(r.history.length, r.revision, `${c.name}: history of ${summary(r)}`);
  }
});

test('window updates carry counters, scores, contributors and threshold of the latest window', () => {
  const state = fresh(6);
  const changes = run(state, [score(0, { score: 1.5 }), score(1, { score: 3, threshold: 1.2 }), normal(2), normal(3)]);
  const last = changes.at(-1)!;
  assert.equal(last.anomalous_windows, 2);
  assert.equal(last.consecutive_normal, 2);
  assert.equal(last.last_score, 3);
  assert.equal(last.peak_score, 3);
  assert.equal(last.threshold, 1.2);
  assert.equal(last.last_anomalous_window_end, T0 + 2 * W);
  assert.equal(last.last_window_end, T0 + 4 * W);
  assert.equal(last.first_window_start, T0);
  assert.equal(last.severity, 'HIGH'); // 3 / 1.2 = 2.5
  const cleared = run(state, [normal(4), normal(5), normal(6), normal(7)]);
  assert.deepEqual(cleared.map(summary), ['tires:OPEN:UPDATED:HIGH:r5', 'tires:OPEN:UPDATED:HIGH:r6', 'tires:OPEN:UPDATED:HIGH:r7', 'tires:CLEARED:CLEARED:HIGH:r8']);
  assert.equal(cleared.at(-1)!.closed_at, NOW + 3);
  assert.equal(run(state, [normal(8)]).length, 0, 'a cleared incident takes no more windows');
});

test('a replayed window that opened a new incident after a clear is ignored', () => {
  const state = fresh(1);
  const first = run(state, [score(0), normal(1), score(2)]);
  assert.deepEqual(first.map(summary), ['tires:OPEN:OPENED:LOW:r1', 'tires:CLEARED:CLEARED:LOW:r2', 'tires:OPEN:OPENED:LOW:r1']);
  for (const replay of [score(0), normal(1), score(2)]) {
    const r = apply(state, replay, NOW);
    assert.deepEqual(r.changes, [], 'replay changes nothing');
  }
  assert.equal(apply(state, score(2), NOW).ignored, 'score.stale_window');
});

test('table: commands', () => {
  const id = incidentId('car-1', 'tires', T0);
  const cases: { name: string; inputs: Input[]; expected: string[]; ignored: (string | undefined)[] }[] = [
    {
      name: 'acknowledge then resolve',
      inputs: [command(id, 'ACKNOWLEDGE'), command(id, 'RESOLVE')],
      expected: ['tires:ACKNOWLEDGED:ACKNOWLEDGED:LOW:r2', 'tires:RESOLVED:RESOLVED:LOW:r3'],
      ignored: [undefined, undefined],
    },
    {
      name: 'resolve straight from OPEN',
      inputs: [command(id, 'RESOLVE')],
      expected: ['tires:RESOLVED:RESOLVED:LOW:r2'],
      ignored: [undefined],
    },
    {
      name: 'the same command id twice is applied once',
      inputs: [command(id, 'ACKNOWLEDGE', 'x'), command(id, 'ACKNOWLEDGE', 'x')],
      expected: ['tires:ACKNOWLEDGED:ACKNOWLEDGED:LOW:r2'],
      ignored: [undefined, 'command.duplicate'],
    },
    {
      name: 'a second acknowledge (other id) finds it not OPEN',
      inputs: [command(id, 'ACKNOWLEDGE', 'a'), command(id, 'ACKNOWLEDGE', 'b')],
      expected: ['tires:ACKNOWLEDGED:ACKNOWLEDGED:LOW:r2'],
      ignored: [undefined, 'command.not_open'],
    },
    {
      name: 'commands on a closed incident are ignored',
      inputs: [command(id, 'RESOLVE', 'a'), command(id, 'ACKNOWLEDGE', 'b'), command(id, 'RESOLVE', 'c')],
      expected: ['tires:RESOLVED:RESOLVED:LOW:r2'],
      ignored: [undefined, 'command.closed', 'command.closed'],
    },
    {
      name: 'unknown incident, or another vehicle',
      inputs: [command('feedfeedfeedfeed', 'ACKNOWLEDGE'), command(id, 'ACKNOWLEDGE', 'v', { vehicle_id: 'car-9' })],
      expected: [],
      ignored: ['command.unknown_incident', 'command.vehicle_mismatch'],
    },
  ];
  for (const c of cases) {
    const state = fresh();
    run(state, [score(0)]);
    const results = c.inputs.map((input, k) => apply(state, input, NOW + 10 + k));
    assert.deepEqual(results.flatMap((r) => r.changes).map(summary), c.expected, c.name);
    assert.deepEqual(
      results.map((r) => r.ignored),
      c.ignored,
      c.name,
    );
  }
});

test('acknowledge and resolve record operator, times and the note in the history', () => {
  const state = fresh();
  const id = run(state, [score(0)])[0]!.incident_id;
  const [acked] = apply(state, command(id, 'ACKNOWLEDGE'), NOW + 5).changes;
  assert.equal(acked!.acknowledged_by, 'olga');
  assert.equal(acked!.acknowledged_at, NOW + 5);
  assert.deepEqual(acked!.history.at(-1), { at: NOW + 5, change: 'ACKNOWLEDGED', severity: 'LOW', by: 'olga', note: 'on it', score: null });
  // An acknowledged incident still takes windows and escalates, staying ACKNOWLEDGED.
  const [escalated] = apply(state, score(1, { score: 9 }), NOW + 6).changes;
  assert.equal(summary(escalated!), 'tires:ACKNOWLEDGED:ESCALATED:CRITICAL:r3');
  const [resolved] = apply(state, command(id, 'RESOLVE', 'r', { operator: 'ben', note: null }), NOW + 7).changes;
  assert.equal(resolved!.resolved_by, 'ben');
  assert.equal(resolved!.closed_at, NOW + 7);
  assert.equal(resolved!.acknowledged_by, 'olga');
  // The next anomalous window of the area opens a new incident.
  const [reopened] = apply(state, score(2), NOW + 8).changes;
  assert.equal(summary(reopened!), 'tires:OPEN:OPENED:LOW:r1');
  assert.notEqual(reopened!.incident_id, id);
  assert.equal(apply(state, command(id, 'ACKNOWLEDGE', 'late'), NOW + 9).ignored, 'command.unknown_incident', 'the replaced incident is no longer known');
});

test('table: receipts', () => {
  const cases: { name: string; inputs: (id: string) => Input[]; expected: string[]; ignored: (string | undefined)[] }[] = [
    { name: 'first receipt sets delivered_at', inputs: (id) => [receipt(id)], expected: ['tires:OPEN:DELIVERED:LOW:r2'], ignored: [undefined] },
    {
      name: 'a second receipt changes nothing',
      inputs: (id) => [receipt(id), receipt(id, { ingested_at: T0 + 99 })],
      expected: ['tires:OPEN:DELIVERED:LOW:r2'],
      ignored: [undefined, 'receipt.already_delivered'],
    },
    { name: 'unknown incident', inputs: () => [receipt('0000000000000000')], expected: [], ignored: ['receipt.unknown_incident'] },
    { name: 'another vehicle cannot confirm', inputs: (id) => [receipt(id, { vehicle_id: 'car-2' })], expected: [], ignored: ['receipt.vehicle_mismatch'] },
  ];
  for (const c of cases) {
    const state = fresh();
    const id = run(state, [score(0)])[0]!.incident_id;
    const results = c.inputs(id).map((input) => apply(state, input, NOW + 1));
    const changes = results.flatMap((r) => r.changes);
    assert.deepEqual(changes.map(summary), c.expected, c.name);
    assert.deepEqual(
      results.map((r) => r.ignored),
      c.ignored,
      c.name,
    );
    for (const r of changes) assert.equal(r.delivered_at, T0 + 2, c.name);
  }
});

test('history is bounded to HISTORY_LIMIT and keeps the opening entry', () => {
  const state = fresh(1000);
  const inputs = Array.from({ length: HISTORY_LIMIT + 20 }, (_, i) => score(i));
  const last = run(state, inputs).at(-1)!;
  assert.equal(last.revision, HISTORY_LIMIT + 20);
  assert.equal(last.history.length, HISTORY_LIMIT);
  assert.equal(last.history[0]!.change, 'OPENED');
  assert.equal(last.history[0]!.at, NOW);
  assert.equal(last.history.at(-1)!.at, NOW + HISTORY_LIMIT + 19);
  assert.equal(last.history[1]!.at, NOW + 21, 'the oldest entries after the first were dropped');
});

test('load restores what apply built: the rebuilt state continues identically', () => {
  const inputs: Input[] = [score(0), score(1, { contributors: COOLING }), normal(2), score(3)];
  const continued = [normal(4), normal(5), score(6, { contributors: COOLING })];
  const a = fresh(3);
  const written = run(a, inputs);
  // Replay the written records in a shuffled order (several topic partitions), as a restart does.
  const b = fresh(3);
  for (const r of [...written].reverse()) load(b, r);
  for (const r of written) load(b, r);
  assert.deepEqual(run(b, continued), run(a, continued));
});

test('load keeps, per (vehicle, area), the incident opened by the latest window', () => {
  const state = fresh(1);
  const changes = run(state, [score(0), normal(1), score(2)]);
  const old = changes[1]!; // CLEARED
  const newer = changes[2]!;
  for (const order of [
    [old, newer],
    [newer, old],
  ]) {
    const s = fresh(1);
    for (const r of order) load(s, r);
    assert.deepEqual([...s.byId.keys()], [newer.incident_id]);
  }
});
