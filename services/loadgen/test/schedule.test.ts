import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '@pitwall/simulator';
import { createTicker, dueAt, DueQueue, firstSlotFrom, makeCadence, sampleTs, slotAt } from '../src/schedule.js';

test('slots: period from rate and time scale, phase inside the period', () => {
  const c = makeCadence({ origin: 1000, rateHz: 2, timeScale: 10, jitter: 0, phase: 0.5 });
  assert.equal(c.periodMs, 50);
  assert.equal(c.phaseMs, 25);
  assert.deepEqual(
    [0, 1, 2].map((k) => slotAt(c, k)),
    [1025, 1075, 1125],
  );
  assert.equal(dueAt(c, 1, 0.9), 1075, 'no jitter: due at the slot');
  assert.throws(() => makeCadence({ origin: 0, rateHz: 1, timeScale: 1, jitter: 1, phase: 0 }), /jitter/);
  assert.throws(() => makeCadence({ origin: 0, rateHz: 1, timeScale: 1, jitter: 0, phase: 1 }), /phase/);
});

test('jitter stays within ±jitter/2 of the slot, keeps order and the mean rate', () => {
  const c = makeCadence({ origin: 0, rateHz: 1, timeScale: 1, jitter: 0.4, phase: 0.3 });
  const ticker = createTicker(c, createRng(7), 0);
  const ticks = Array.from({ length: 10_000 }, () => ticker.next());
  assert.deepEqual(
    ticks.slice(0, 3).map((t) => t.k),
    [0, 1, 2],
  );
  const due = ticks.map((t) => t.due);
  due.forEach((d, k) => assert.ok(Math.abs(d - slotAt(c, k)) <= 200 + 1e-9, `send ${k} ${d - slotAt(c, k)} ms off`));
  for (let k = 1; k < due.length; k++) assert.ok(due[k]! > due[k - 1]!, 'in order');
  const gaps = due.slice(1).map((d, k) => d - due[k]!);
  assert.ok(Math.min(...gaps) >= 600 - 1e-9 && Math.max(...gaps) <= 1400 + 1e-9);
  const mean = (due[due.length - 1]! - due[0]!) / (due.length - 1);
  assert.ok(Math.abs(mean - 1000) < 0.1, `no drift: mean gap ${mean}`);
  const spread = due.map((d, k) => d - slotAt(c, k));
  assert.ok(Math.min(...spread) < -150 && Math.max(...spread) > 150, 'jitter is used');
});

test('a sender that connects late starts at its next slot', () => {
  const c = makeCadence({ origin: 1000, rateHz: 1, timeScale: 1, jitter: 0, phase: 0.25 });
  assert.equal(firstSlotFrom(c, 0), 0);
  assert.equal(firstSlotFrom(c, 1250), 0);
  assert.equal(firstSlotFrom(c, 1251), 1);
  assert.deepEqual(createTicker(c, createRng(1), 5600).next(), { k: 5, due: 6250 });
});

test('event times stay on the sampling grid, whatever the send jitter', () => {
  assert.deepEqual(
    [0, 1, 2, 3].map((k) => sampleTs(1_000_123, 1, k)),
    [1_000_123, 1_001_123, 1_002_123, 1_003_123],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((k) => sampleTs(0, 3, k)),
    [0, 333, 667, 1000],
    'no drift at rates that do not divide a second',
  );
  assert.equal(sampleTs(0, 0.1, 7), 70_000);
});

test('phases spread a fleet over the period', () => {
  const counts = new Array(10).fill(0);
  const rng = createRng(3);
  for (let i = 0; i < 5000; i++) {
    const c = makeCadence({ origin: 0, rateHz: 1, timeScale: 1, jitter: 0, phase: rng.next() });
    counts[Math.floor(slotAt(c, 0) / 100)] += 1;
  }
  assert.ok(
    counts.every((n) => n > 400 && n < 600),
    `per 100 ms: ${counts.join(' ')}`,
  );
});

test('DueQueue pops in due order', () => {
  const q = new DueQueue<string>();
  const rng = createRng(11);
  const due = Array.from({ length: 1000 }, () => rng.uniform(0, 1e6));
  due.forEach((d, i) => q.push(d, `s${i}`));
  assert.equal(q.size, 1000);
  assert.equal(q.peek(), Math.min(...due));
  const out: number[] = [];
  for (let e = q.pop(); e; e = q.pop()) out.push(e.due);
  assert.deepEqual(
    out,
    [...due].sort((a, b) => a - b),
  );
  assert.equal(q.pop(), undefined);
  assert.equal(q.peek(), undefined);
});
