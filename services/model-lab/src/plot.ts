/**
 * A tiny raster plotter for the evaluation figure: an RGBA canvas with lines, dashed lines,
 * rectangles and text in a built-in 5x7 bitmap font (upper case; lower case is drawn as upper
 * case), encoded as PNG with pngjs. No anti-aliasing, so the same input gives the same bytes.
 */
import { PNG } from 'pngjs';
import type { EvaluationReport, ExampleSeries } from './evaluation.js';

export type Rgb = readonly [number, number, number];

export const COLORS = Object.freeze({
  background: [255, 255, 255] as Rgb,
  axis: [60, 60, 60] as Rgb,
  grid: [228, 228, 228] as Rgb,
  text: [30, 30, 30] as Rgb,
  score: [31, 97, 181] as Rgb,
  alert: [200, 40, 40] as Rgb,
  threshold: [200, 40, 40] as Rgb,
  onset: [230, 140, 0] as Rgb,
  full: [120, 120, 120] as Rgb,
});

/**
 * 5x7 glyphs, one string per row, '#' = ink. Drawn for this file.
 */
const GLYPHS: Readonly<Record<string, readonly string[]>> = {
  A: ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  B: ['####.', '#...#', '#...#', '####.', '#...#', '#...#', '####.'],
  C: ['.###.', '#...#', '#....', '#....', '#....', '#...#', '.###.'],
  D: ['####.', '#...#', '#...#', '#...#', '#...#', '#...#', '####.'],
  E: ['#####', '#....', '#....', '####.', '#....', '#....', '#####'],
  F: ['#####', '#....', '#....', '####.', '#....', '#....', '#....'],
  G: ['.###.', '#...#', '#....', '#.###', '#...#', '#...#', '.####'],
  H: ['#...#', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  I: ['.###.', '..#..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  J: ['..###', '...#.', '...#.', '...#.', '...#.', '#..#.', '.##..'],
  K: ['#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'],
  L: ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  M: ['#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'],
  N: ['#...#', '#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#'],
  O: ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  P: ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  Q: ['.###.', '#...#', '#...#', '#...#', '#.#.#', '#..#.', '.##.#'],
  R: ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
  S: ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  T: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'],
  U: ['#...#', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  V: ['#...#', '#...#', '#...#', '#...#', '#...#', '.#.#.', '..#..'],
  W: ['#...#', '#...#', '#...#', '#.#.#', '#.#.#', '#.#.#', '.#.#.'],
  X: ['#...#', '#...#', '.#.#.', '..#..', '.#.#.', '#...#', '#...#'],
  Y: ['#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'],
  Z: ['#####', '....#', '...#.', '..#..', '.#...', '#....', '#####'],
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '3': ['#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '5': ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  '6': ['..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'],
  '7': ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  '8': ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  '9': ['.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
  '.': ['.....', '.....', '.....', '.....', '.....', '.##..', '.##..'],
  ',': ['.....', '.....', '.....', '.....', '.##..', '..#..', '.#...'],
  ':': ['.....', '.##..', '.##..', '.....', '.##..', '.##..', '.....'],
  '-': ['.....', '.....', '.....', '#####', '.....', '.....', '.....'],
  _: ['.....', '.....', '.....', '.....', '.....', '.....', '#####'],
  '/': ['.....', '....#', '...#.', '..#..', '.#...', '#....', '.....'],
  '(': ['...#.', '..#..', '.#...', '.#...', '.#...', '..#..', '...#.'],
  ')': ['.#...', '..#..', '...#.', '...#.', '...#.', '..#..', '.#...'],
  '%': ['##...', '##..#', '...#.', '..#..', '.#...', '#..##', '...##'],
  '=': ['.....', '.....', '#####', '.....', '#####', '.....', '.....'],
  '+': ['.....', '..#..', '..#..', '#####', '..#..', '..#..', '.....'],
  '>': ['.#...', '..#..', '...#.', '....#', '...#.', '..#..', '.#...'],
  '<': ['...#.', '..#..', '.#...', '#....', '.#...', '..#..', '...#.'],
  '?': ['.###.', '#...#', '....#', '...#.', '..#..', '.....', '..#..'],
  "'": ['..#..', '..#..', '.#...', '.....', '.....', '.....', '.....'],
};

export const GLYPH_W = 5;
export const GLYPH_H = 7;

export interface Canvas {
  readonly width: number;
  readonly height: number;
  pixel(x: number, y: number, c: Rgb): void;
  /** RGB of a pixel (tests). */
  get(x: number, y: number): [number, number, number];
  rect(x: number, y: number, w: number, h: number, c: Rgb): void;
  /** Bresenham line, `thickness` pixels wide (square pen). Every `dash` pixels on, `dash` off when dash > 0. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, opts?: { thickness?: number; dash?: number }): void;
  /** Text with its top-left corner at (x, y); 6*scale px per character. Returns the width drawn. */
  text(x: number, y: number, s: string, c: Rgb, scale?: number): number;
  png(): Buffer;
}

export function textWidth(s: string, scale = 1): number {
  return s.length * (GLYPH_W + 1) * scale - (s.length > 0 ? scale : 0);
}

export function createCanvas(width: number, height: number, background: Rgb = COLORS.background): Canvas {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[i * 4] = background[0];
    data[i * 4 + 1] = background[1];
    data[i * 4 + 2] = background[2];
    data[i * 4 + 3] = 255;
  }
  const pixel = (x: number, y: number, c: Rgb): void => {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= width || yi >= height) return;
    const i = (yi * width + xi) * 4;
    data[i] = c[0];
    data[i + 1] = c[1];
    data[i + 2] = c[2];
  };
  const canvas: Canvas = {
    width,
    height,
    pixel,
    get(x, y) {
      const i = (y * width + x) * 4;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    },
    rect(x, y, w, h, c) {
      for (let yy = Math.round(y); yy < Math.round(y + h); yy++) for (let xx = Math.round(x); xx < Math.round(x + w); xx++) pixel(xx, yy, c);
    },
    line(x0, y0, x1, y1, c, opts = {}) {
      const t = opts.thickness ?? 1;
      const dash = opts.dash ?? 0;
      let x = Math.round(x0);
      let y = Math.round(y0);
      const xe = Math.round(x1);
      const ye = Math.round(y1);
      const dx = Math.abs(xe - x);
      const dy = -Math.abs(ye - y);
      const sx = x < xe ? 1 : -1;
      const sy = y < ye ? 1 : -1;
      let err = dx + dy;
      const lo = -Math.floor((t - 1) / 2);
      for (let step = 0; ; step++) {
        if (dash <= 0 || Math.floor(step / dash) % 2 === 0) {
          for (let a = lo; a < lo + t; a++) for (let b = lo; b < lo + t; b++) pixel(x + a, y + b, c);
        }
        if (x === xe && y === ye) break;
        const e2 = 2 * err;
        if (e2 >= dy) {
          err += dy;
          x += sx;
        }
        if (e2 <= dx) {
          err += dx;
          y += sy;
        }
      }
    },
    text(x, y, s, c, scale = 1) {
      let cx = Math.round(x);
      for (const ch of s) {
        const glyph = GLYPHS[ch.toUpperCase()] ?? GLYPHS['?']!;
        glyph.forEach((row, gy) => {
          for (let gx = 0; gx < GLYPH_W; gx++) {
            if (row[gx] === '#') canvas.rect(cx + gx * scale, Math.round(y) + gy * scale, scale, scale, c);
          }
        });
        cx += (GLYPH_W + 1) * scale;
      }
      return textWidth(s, scale);
    },
    png() {
      const png = new PNG({ width, height, colorType: 2, inputColorType: 6, inputHasAlpha: true });
      data.copy(png.data);
      return PNG.sync.write(png, { colorType: 2, inputColorType: 6, inputHasAlpha: true, deflateLevel: 9 });
    },
  };
  return canvas;
}

/** Log10 axis limits covering the values, the threshold and one decade of margin, in whole decades. */
export function logRange(values: readonly number[], threshold: number): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.min(threshold, ...finite);
  const hi = Math.max(threshold, ...finite);
  return [Math.floor(Math.log10(lo)), Math.max(Math.ceil(Math.log10(hi)), Math.floor(Math.log10(lo)) + 1)];
}

/** 0.01 .. 1000 written out, other decades as 1E-3, 1E4. */
export const decadeLabel = (e: number): string => (e >= -2 && e <= 3 ? (e >= 0 ? String(10 ** e) : (10 ** e).toFixed(-e)) : `1E${e}`);

interface Panel {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One example car: score per window on a log axis, threshold, onset and full severity marked. */
function drawPanel(c: Canvas, p: Panel, ex: ExampleSeries, threshold: number, startTs: number, endTs: number, decades: [number, number]): void {
  const plot = { x: p.x + 40, y: p.y + 32, w: p.w - 52, h: p.h - 58 };
  const [d0, d1] = decades;
  const xOf = (ts: number): number => plot.x + ((ts - startTs) / (endTs - startTs)) * plot.w;
  const yOf = (v: number): number => {
    const l = Math.min(d1, Math.max(d0, Math.log10(Math.max(v, 10 ** d0))));
    return plot.y + plot.h - ((l - d0) / (d1 - d0)) * plot.h;
  };
  c.text(p.x + 6, p.y + 6, ex.mode.replace(/_/g, ' '), COLORS.text, 2);
  c.text(p.x + p.w - 10 - textWidth(ex.vehicleId), p.y + 10, ex.vehicleId, COLORS.text);
  // Grid and y ticks: one per decade.
  for (let e = d0; e <= d1; e++) {
    const y = Math.round(yOf(10 ** e));
    c.line(plot.x, y, plot.x + plot.w, y, COLORS.grid);
    const label = decadeLabel(e);
    c.text(plot.x - 6 - textWidth(label), y - 3, label, COLORS.text);
  }
  // x ticks every 10 minutes.
  const minutes = (endTs - startTs) / 60_000;
  const every = minutes > 90 ? 30 : minutes > 30 ? 10 : 5;
  for (let m = 0; m <= minutes + 1e-9; m += every) {
    const x = Math.round(xOf(startTs + m * 60_000));
    c.line(x, plot.y, x, plot.y + plot.h, COLORS.grid);
    c.line(x, plot.y + plot.h, x, plot.y + plot.h + 3, COLORS.axis);
    const label = String(m);
    c.text(x - Math.floor(textWidth(label) / 2), plot.y + plot.h + 6, label, COLORS.text);
  }
  c.text(plot.x + plot.w - textWidth('MIN'), plot.y + plot.h + 15, 'min', COLORS.text);
  c.line(plot.x, plot.y, plot.x, plot.y + plot.h, COLORS.axis);
  c.line(plot.x, plot.y + plot.h, plot.x + plot.w, plot.y + plot.h, COLORS.axis);
  // Markers below the data so the score line stays visible.
  const onsetX = Math.round(xOf(ex.onsetTs));
  c.line(onsetX, plot.y, onsetX, plot.y + plot.h, COLORS.onset, { thickness: 2 });
  const fullX = Math.round(xOf(ex.fullSeverityTs));
  c.line(fullX, plot.y, fullX, plot.y + plot.h, COLORS.full, { dash: 4 });
  const ty = Math.round(yOf(threshold));
  c.line(plot.x, ty, plot.x + plot.w, ty, COLORS.threshold, { dash: 6 });
  let prev: [number, number] | undefined;
  for (const [ts, score] of ex.points) {
    const pt: [number, number] = [xOf(ts), yOf(score)];
    if (prev) c.line(prev[0], prev[1], pt[0], pt[1], COLORS.score);
    prev = pt;
  }
  // Alerting windows as a red tick strip under the plot area's top edge.
  for (const [ts, score] of ex.points) if (score > threshold) c.rect(Math.round(xOf(ts)) - 1, plot.y - 8, 2, 5, COLORS.alert);
}

function drawLegend(c: Canvas, p: Panel, r: EvaluationReport): void {
  let y = p.y + 8;
  c.text(p.x + 8, y, `${r.model.name} v${r.model.version}`, COLORS.text, 2);
  y += 26;
  const item = (draw: (x: number, y: number) => void, label: string): void => {
    draw(p.x + 10, y + 6);
    c.text(p.x + 46, y + 3, label, COLORS.text);
    y += 18;
  };
  item((x, yy) => c.line(x, yy, x + 28, yy, COLORS.score), `anomaly score per ${r.fleet.windowSizeMs / 1000} s window (log scale)`);
  item((x, yy) => c.line(x, yy, x + 28, yy, COLORS.threshold, { dash: 6 }), `threshold ${r.model.threshold}`);
  item((x, yy) => c.line(x + 14, yy - 6, x + 14, yy + 6, COLORS.onset, { thickness: 2 }), 'failure onset (ground truth)');
  item((x, yy) => c.line(x + 14, yy - 6, x + 14, yy + 6, COLORS.full, { dash: 4 }), 'full severity (end of ramp)');
  item((x, yy) => c.rect(x + 13, yy - 3, 2, 5, COLORS.alert), 'window above threshold (alert)');
  y += 8;
  const o = r.overall;
  const lines = [
    `fleet seed ${r.fleet.seed}: ${r.fleet.healthyCars} healthy + ${r.fleet.carsPerMode} per mode`,
    `recall ${o.carsDetected}/${o.cars} cars, precision ${o.precision === null ? '-' : (100 * o.precision).toFixed(1) + '%'}`,
    `false alerts ${o.falseAlertsPerVehicleHour.toFixed(3)} per vehicle-hour`,
    `lead time p50 ${o.leadTimeS.median ?? '-'} s, p90 ${o.leadTimeS.p90 ?? '-'} s`,
    'x: minutes since fleet start',
  ];
  for (const l of lines) {
    c.text(p.x + 10, y, l, COLORS.text);
    y += 14;
  }
}

/** The evaluation figure: one panel per failure mode's example car, and a legend, on a grid. */
export function renderEvaluationPng(r: EvaluationReport, opts: { panelWidth?: number; panelHeight?: number; columns?: number } = {}): Buffer {
  const pw = opts.panelWidth ?? 440;
  const ph = opts.panelHeight ?? 200;
  const cols = opts.columns ?? 2;
  const cells = r.examples.length + 1;
  const rows = Math.ceil(cells / cols);
  const c = createCanvas(cols * pw, rows * ph);
  const startTs = r.fleet.startTs;
  const endTs = startTs + r.fleet.durationMs;
  // Each panel its own decades: a wild faulty sensor scores 1e7 and would flatten the others.
  r.examples.forEach((ex, i) => {
    const decades = logRange(
      ex.points.map((p) => p[1]),
      r.model.threshold,
    );
    drawPanel(c, { x: (i % cols) * pw, y: Math.floor(i / cols) * ph, w: pw, h: ph }, ex, r.model.threshold, startTs, endTs, decades);
  });
  const li = r.examples.length;
  drawLegend(c, { x: (li % cols) * pw, y: Math.floor(li / cols) * ph, w: pw, h: ph }, r);
  return c.png();
}
