import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWindowClosed, windowDef, windowStartsFor } from '../src/windows.js';

const cases: Array<[string, [number, number, number], number, number[]]> = [
  ['tumbling: start of window', [10_000, 10_000, 0], 20_000, [20_000]],
  ['tumbling: last ms of window', [10_000, 10_000, 0], 29_999, [20_000]],
  ['tumbling: epoch aligned', [10_000, 10_000, 0], 0, [0]],
  ['tumbling: negative time', [10_000, 10_000, 0], -1, [-10_000]],
  ['hopping 10s/5s: two windows', [10_000, 5_000, 0], 12_000, [5_000, 10_000]],
  ['hopping 10s/5s: on a boundary', [10_000, 5_000, 0], 15_000, [10_000, 15_000]],
  ['hopping 10s/3s: non-divisible advance', [10_000, 3_000, 0], 10_000, [3_000, 6_000, 9_000]],
  ['hopping 10s/1s: ten windows', [10_000, 1_000, 0], 9_500, [0, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000]],
];
for (const [name, [size, advance, grace], ts, expected] of cases) {
  test(`windowStartsFor ${name}`, () => {
    const starts = windowStartsFor(windowDef(size, advance, grace), ts);
    assert.deepEqual(starts, expected);
    for (const s of starts) assert.ok(s <= ts && ts < s + size && s % advance === 0);
  });
}

const closing: Array<[number, number, number, boolean]> = [
  // start, grace, watermark, closed?
  [0, 0, 9_999, false],
  [0, 0, 10_000, true],
  [0, 2_000, 11_999, false],
  [0, 2_000, 12_000, true],
];
for (const [start, grace, wm, closed] of closing) {
  test(`window [${start},+10s) grace ${grace} at watermark ${wm} is ${closed ? 'closed' : 'open'}`, () => {
    assert.equal(isWindowClosed(windowDef(10_000, 10_000, grace), start, wm), closed);
  });
}

test('windowDef refuses nonsense', () => {
  assert.throws(() => windowDef(0), RangeError);
  assert.throws(() => windowDef(10, 20), RangeError);
  assert.throws(() => windowDef(10, 10, -1), RangeError);
  assert.throws(() => windowDef(10.5), RangeError);
});
