/** Reading a service's GET /metrics (Prometheus text format) in tests. */
import { parseSeriesKey } from '@pitwall/common';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  text: string;
  samples: Sample[];
  /** Sum of the samples of `name` whose labels include `match`. */
  sum(name: string, match?: Record<string, string>): number;
  /** Whether the text declares `name` (a # TYPE line), samples or not. */
  declares(name: string, type?: string): boolean;
}

export function parseMetrics(text: string): Scrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const { name, labels } = parseSeriesKey(line.slice(0, space));
    samples.push({ name, labels, value: Number(line.slice(space + 1)) });
  }
  return {
    text,
    samples,
    sum: (name, match = {}) => samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0),
    declares: (name, type) => new RegExp(`^# TYPE ${name} ${type ?? '\\w+'}$`, 'm').test(text),
  };
}

export async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) throw new Error(`content-type ${res.headers.get('content-type')}`);
  return parseMetrics(await res.text());
}
