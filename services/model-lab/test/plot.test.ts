import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import type { EvaluationReport } from '../src/evaluation.js';
import { COLORS, createCanvas, decadeLabel, logRange, renderEvaluationPng, textWidth } from '../src/plot.js';

const ink = (c: ReturnType<typeof createCanvas>, x0: number, y0: number, w: number, h: number): number => {
  let n = 0;
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) if (c.get(x, y).join() !== COLORS.background.join()) n++;
  return n;
};

describe('canvas', () => {
  it('draws a line through both end points and nothing far from it', () => {
    const c = createCanvas(20, 20);
    c.line(2, 3, 15, 12, COLORS.score);
    assert.deepEqual(c.get(2, 3), [...COLORS.score]);
    assert.deepEqual(c.get(15, 12), [...COLORS.score]);
    assert.equal(ink(c, 0, 14, 20, 6), 0);
    // One pixel per step along the longer axis.
    assert.equal(ink(c, 0, 0, 20, 20), 14);
  });

  it('leaves gaps in a dashed line', () => {
    const c = createCanvas(40, 3);
    c.line(0, 1, 39, 1, COLORS.threshold, { dash: 5 });
    assert.equal(ink(c, 0, 0, 40, 3), 20);
    assert.deepEqual(c.get(0, 1), [...COLORS.threshold]);
    assert.deepEqual(c.get(5, 1), [...COLORS.background]);
  });

  it('clips drawing outside the canvas', () => {
    const c = createCanvas(5, 5);
    c.line(-10, 2, 20, 2, COLORS.axis);
    c.rect(3, 3, 10, 10, COLORS.axis);
    assert.equal(ink(c, 0, 0, 5, 5), 5 + 4);
  });

  const texts: Array<[string, number]> = [
    ['', 0],
    ['A', 5],
    ['min', 17],
  ];
  for (const [s, w] of texts) {
    it(`text "${s}" is ${w} px wide and inks only inside its box`, () => {
      assert.equal(textWidth(s), w);
      const c = createCanvas(30, 12);
      c.text(1, 2, s, COLORS.text);
      assert.equal(ink(c, 0, 0, 30, 12), ink(c, 1, 2, w, 7));
      assert.equal(ink(c, 1, 2, w, 7) > 0, s.length > 0);
    });
  }

  it('draws lower case as upper case and unknown characters as "?"', () => {
    const a = createCanvas(6, 7);
    const b = createCanvas(6, 7);
    a.text(0, 0, 'k', COLORS.text);
    b.text(0, 0, 'K', COLORS.text);
    assert.deepEqual(a.png(), b.png());
    const q = createCanvas(6, 7);
    const u = createCanvas(6, 7);
    q.text(0, 0, '?', COLORS.text);
    u.text(0, 0, '§', COLORS.text);
    assert.deepEqual(q.png(), u.png());
  });

  it('encodes a PNG of its size', () => {
    const c = createCanvas(7, 4);
    c.pixel(1, 1, [1, 2, 3]);
    const png = PNG.sync.read(c.png());
    assert.equal(png.width, 7);
    assert.equal(png.height, 4);
    assert.deepEqual([...png.data.subarray((1 * 7 + 1) * 4, (1 * 7 + 1) * 4 + 4)], [1, 2, 3, 255]);
  });
});

describe('axes', () => {
  const ranges: Array<[number[], number, [number, number]]> = [
    [[0.2, 0.5, 30], 1.4, [-1, 2]],
    [[0.05, 2e6], 1.4, [-2, 7]],
    [[1, 1], 1, [0, 1]],
    [[0, Number.NaN, 3], 2, [0, 1]],
  ];
  for (const [values, t, want] of ranges) it(`logRange(${values.join(',')}; ${t}) = ${want.join('..')}`, () => assert.deepEqual(logRange(values, t), want));
  const labels: Array<[number, string]> = [
    [-3, '1E-3'],
    [-2, '0.01'],
    [0, '1'],
    [3, '1000'],
    [4, '1E4'],
  ];
  for (const [e, want] of labels) it(`decade ${e} is labelled ${want}`, () => assert.equal(decadeLabel(e), want));
});

describe('renderEvaluationPng', () => {
  const report = {
    model: { name: 'm', version: '3', threshold: 1.5, thresholdSource: 'model', modelThreshold: 1.5 },
    fleet: { seed: 1, healthyCars: 2, carsPerMode: 1, durationMs: 600_000, startTs: 0, windowSizeMs: 10_000 },
    overall: { carsDetected: 1, cars: 1, precision: 1, falseAlertsPerVehicleHour: 0, leadTimeS: { median: 20, p90: 20 } },
    examples: [
      { mode: 'tire_leak', vehicleId: 'eval-0003', onsetTs: 200_000, fullSeverityTs: 260_000, points: Array.from({ length: 60 }, (_, i) => [(i + 1) * 10_000, i < 20 ? 0.2 : 20] as [number, number]) },
    ],
  } as unknown as EvaluationReport;

  it('draws one panel per example plus a legend, the same bytes every time', () => {
    const a = renderEvaluationPng(report, { panelWidth: 300, panelHeight: 160, columns: 2 });
    assert.deepEqual(a, renderEvaluationPng(report, { panelWidth: 300, panelHeight: 160, columns: 2 }));
    const png = PNG.sync.read(a);
    assert.equal(png.width, 600);
    assert.equal(png.height, 160);
    // The score line's colour appears in the panel; the alert colour marks the alerting windows.
    const colours = new Set<string>();
    for (let i = 0; i < png.data.length; i += 4) colours.add(`${png.data[i]},${png.data[i + 1]},${png.data[i + 2]}`);
    for (const c of [COLORS.score, COLORS.alert, COLORS.onset, COLORS.text]) assert.ok(colours.has(c.join(',')), `colour ${c.join(',')} drawn`);
  });
});
