/**
 * `npm run loadtest -- report <file.jsonl>`: a picture of a run from its JSON lines. Writes a
 * self-contained HTML page (inline SVG, no scripts, no external resources) with the summary, and
 * the same charts as a standalone .svg (for docs/performance.md). Panels: readings/s sent vs acknowledged vs
 * each stage's records/s; consumer lag per group; alert latency over time; connections up; and,
 * when the run sampled them, the CPU of each service, broker and the load generator itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { STAGES } from './kafka-probe.js';
import type { SecondRecord } from './second.js';
import type { Summary } from './summary.js';
import { summaryTable } from './summary.js';
import { escapeXml, lineChart, type Series } from './svg.js';

export interface RunLog {
  start: { options?: { prefix?: string } } | undefined;
  seconds: SecondRecord[];
  summary: Summary | undefined;
}

export function parseRunLog(text: string): RunLog {
  const log: RunLog = { start: undefined, seconds: [], summary: undefined };
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: { type?: string };
    try {
      rec = JSON.parse(line) as { type?: string };
    } catch {
      throw new Error(`line ${i + 1} is not JSON`);
    }
    if (rec.type === 'start') log.start = rec as RunLog['start'];
    else if (rec.type === 'second') log.seconds.push(rec as SecondRecord);
    else if (rec.type === 'summary') log.summary = rec as Summary;
  });
  if (log.seconds.length === 0) throw new Error('no per-second records (type "second") in the file');
  return log;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function renderCharts(log: RunLog): string {
  const s = log.seconds;
  const pts = (f: (r: SecondRecord) => number | null): [number, number | null][] => s.map((r) => [r.t, f(r)]);
  const stopped = s.find((r) => r.phase === 'drain');
  const markers = stopped ? [{ x: stopped.t, label: 'publishing stops' }] : [];
  const groups = Object.keys(s[0]!.lag);
  const panels: { title: string; yLabel: string; series: Series[] }[] = [
    {
      title: 'Readings per second: sent, acknowledged (PUBACK), and records per second of each stage',
      yLabel: 'per second',
      series: [
        { name: 'sent', color: '#999999', points: pts((r) => r.readings.sentPerS), dashed: true },
        { name: 'acknowledged', color: '#000000', points: pts((r) => r.readings.ackedPerS) },
        ...STAGES.map((st, i): Series => ({ name: st, color: COLORS[i]!, points: pts((r) => r.stages[st].perS) })),
      ],
    },
    {
      title: 'Consumer lag (records behind the end of their input topics)',
      yLabel: 'records',
      series: groups.map((g, i): Series => ({ name: g, color: COLORS[i % COLORS.length]!, points: pts((r) => r.lag[g] ?? null) })),
    },
    {
      title: 'Alert latency: end of the first anomalous window + grace -> alert on the car (over the run so far)',
      yLabel: 'ms',
      series: [
        { name: 'p50', color: COLORS[0]!, points: pts((r) => r.latencyMs.p50) },
        { name: 'p99', color: COLORS[3]!, points: pts((r) => r.latencyMs.p99) },
        { name: 'max', color: '#999999', points: pts((r) => r.latencyMs.max), dashed: true },
      ],
    },
    {
      title: 'MQTT connections up',
      yLabel: 'connections',
      series: [{ name: 'connections up', color: COLORS[0]!, points: pts((r) => r.connections.up) }],
    },
  ];
  const processes = [...new Set(s.flatMap((r) => Object.keys(r.processes ?? {})))];
  if (processes.length > 0) {
    panels.push({
      title: 'CPU, % of one core: each service and local broker, and the load generator',
      yLabel: '% of a core',
      series: [
        ...processes.map((name, i): Series => ({ name, color: COLORS[i % COLORS.length]!, points: pts((r) => r.processes?.[name]?.cpuPct ?? null), dashed: i >= COLORS.length })),
        { name: 'load generator', color: '#000000', points: pts((r) => r.loadgen.cpuPct) },
      ],
    });
  }
  const height = 260;
  const body = panels.map((p, i) => lineChart({ ...p, markers, height }, i * height)).join('\n');
  const total = panels.length * height;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${total}" viewBox="0 0 900 ${total}"><rect width="900" height="${total}" fill="#ffffff"/>\n${body}\n</svg>`;
}

export function renderHtml(log: RunLog): string {
  const title = `Pitwall load test ${log.summary?.run.prefix ?? log.start?.options?.prefix ?? ''}`.trim();
  const table = log.summary ? `<pre>${escapeXml(summaryTable(log.summary))}</pre>` : '<p>No summary: the run did not finish.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}pre{background:#f6f6f6;padding:12px;overflow-x:auto}</style></head>
<body><h1>${escapeXml(title)}</h1>
${table}
${renderCharts(log)}
</body></html>
`;
}

/** Writes <out or input without .jsonl>.html and the same charts as .svg; returns both paths. */
export function writeReport(input: string, out?: string): { html: string; svg: string } {
  const log = parseRunLog(readFileSync(input, 'utf8'));
  const html = out ?? input.replace(/\.jsonl?$/i, '') + '.html';
  const svg = html.replace(/\.html?$/i, '') + '.svg';
  writeFileSync(html, renderHtml(log));
  writeFileSync(svg, renderCharts(log) + '\n');
  return { html, svg };
}
