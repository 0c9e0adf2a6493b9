/**
 * A minimal line chart as an SVG fragment: axes with round-number ticks, one polyline per series
 * (gaps where a value is null), a legend. Pure string building, no dependencies, no scripts.
 */
export interface Series {
  name: string;
  color: string;
  /** [x, y]; y null = no value (the line breaks). */
  points: readonly (readonly [number, number | null])[];
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  yLabel: string;
  xLabel?: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  /** Vertical marker lines, e.g. where publishing stopped. */
  markers?: readonly { x: number; label: string }[];
}

export const escapeXml = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** About `count` round tick values (1, 2, 5 x 10^n steps) covering [0, max]. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step - 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const label = (v: number): string => (Math.abs(v) >= 10_000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(4))));

export function lineChart(o: ChartOptions, offsetY = 0): string {
  const W = o.width ?? 900;
  const H = o.height ?? 260;
  const m = { l: 64, r: 170, t: 28, b: 36 };
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.flatMap((p) => (p[1] === null ? [] : [p[1]])));
  const xMax = Math.max(1, ...xs);
  const yTicks = niceTicks(Math.max(0, ...ys));
  const yMax = yTicks[yTicks.length - 1]!;
  const px = (x: number): number => m.l + (x / xMax) * (W - m.l - m.r);
  const py = (y: number): number => H - m.b - (y / yMax) * (H - m.t - m.b);
  const f = (v: number): string => v.toFixed(1);

  const parts: string[] = [`<g transform="translate(0,${offsetY})" font-family="sans-serif" font-size="11">`];
  parts.push(`<text x="${m.l}" y="16" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (const v of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f(py(v))}" y2="${f(py(v))}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${m.l - 6}" y="${f(py(v) + 4)}" text-anchor="end">${label(v)}</text>`);
  }
  for (const v of niceTicks(xMax, 8)) {
    if (v > xMax) continue;
    parts.push(`<text x="${f(px(v))}" y="${H - m.b + 16}" text-anchor="middle">${label(v)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#888"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#888"/>`);
  parts.push(`<text transform="translate(14,${f((m.t + H - m.b) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  parts.push(`<text x="${f((m.l + W - m.r) / 2)}" y="${H - 4}" text-anchor="middle">${escapeXml(o.xLabel ?? 'seconds since start')}</text>`);
  for (const mk of o.markers ?? []) {
    parts.push(`<line x1="${f(px(mk.x))}" x2="${f(px(mk.x))}" y1="${m.t}" y2="${H - m.b}" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${f(px(mk.x) - 3)}" y="${m.t + 10}" fill="#666" text-anchor="end">${escapeXml(mk.label)}</text>`);
  }
  o.series.forEach((s, i) => {
    // One polyline per run of consecutive values.
    let run: string[] = [];
    const flush = (): void => {
      if (run.length > 0) {
        parts.push(`<polyline data-series="${escapeXml(s.name)}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${run.join(' ')}"/>`);
      }
      run = [];
    };
    for (const [x, y] of s.points) {
      if (y === null) flush();
      else run.push(`${f(px(x))},${f(py(y))}`);
    }
    flush();
    const ly = m.t + 6 + i * 16;
    parts.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${W - m.r + 38}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</g>');
  return parts.join('\n');
}
