import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSendWindow, PROTOCOL_RECEIVE_MAXIMUM } from '../src/send-window.js';

/** Submits n sends that record their order and keep their `done` for the test to call. */
function submitN(w: ReturnType<typeof createSendWindow>, n: number, started: number[], dones: Array<() => void>): void {
  for (let i = 0; i < n; i++) {
    w.submit((done) => {
      started.push(i);
      dones[i] = done;
    });
  }
}

test('never more in flight than the limit; the rest go in order as PUBACKs come', () => {
  const w = createSendWindow(3);
  const started: number[] = [];
  const dones: Array<() => void> = [];
  submitN(w, 10, started, dones);
  assert.deepEqual(started, [0, 1, 2]);
  assert.deepEqual([w.inFlight(), w.waiting()], [3, 7]);
  dones[1]!();
  assert.deepEqual(started, [0, 1, 2, 3]);
  dones[1]!(); // a second call for the same send changes nothing
  assert.deepEqual([w.inFlight(), w.waiting()], [3, 6]);
  for (let i = 0; i < 10; i++) dones[i]?.();
  for (let i = 0; i < 10; i++) dones[i]?.();
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([w.inFlight(), w.waiting()], [0, 0]);
});

test("a CONNACK's receive maximum applies from then on: lower holds new sends back, higher releases waiting ones", () => {
  const w = createSendWindow();
  const started: number[] = [];
  const dones: Array<() => void> = [];
  submitN(w, 5, started, dones);
  assert.equal(w.inFlight(), 5, 'the protocol maximum until a CONNACK');
  w.setLimit(2);
  const later: number[] = [];
  w.submit(() => later.push(1));
  assert.deepEqual(later, [], 'over the new limit: waits');
  for (const d of dones) d();
  assert.deepEqual(later, [1]);
  const w2 = createSendWindow(1);
  const s2: number[] = [];
  submitN(w2, 4, s2, []);
  w2.setLimit(3);
  assert.deepEqual(s2, [0, 1, 2]);
});

test('a send that completes synchronously does not reorder or overrun', () => {
  const w = createSendWindow(2);
  const order: number[] = [];
  let peak = 0;
  for (let i = 0; i < 5000; i++) {
    w.submit((done) => {
      order.push(i);
      peak = Math.max(peak, w.inFlight());
      done();
    });
  }
  assert.equal(order.length, 5000);
  assert.ok(order.every((v, i) => v === i));
  assert.ok(peak <= 2);
  assert.deepEqual([w.inFlight(), w.waiting()], [0, 0]);
});

test('receive maximum out of range is refused', () => {
  const w = createSendWindow();
  for (const bad of [0, -1, 1.5, PROTOCOL_RECEIVE_MAXIMUM + 1, Number.NaN]) assert.throws(() => w.setLimit(bad), RangeError, String(bad));
});
