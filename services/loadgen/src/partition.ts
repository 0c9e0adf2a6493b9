/**
 * How the fleet is cut up: cars over connections, connections over worker processes. Both are
 * contiguous, balanced splits (sizes differ by at most one), so a car's connection and a
 * connection's worker follow from the counts alone and do not depend on each other.
 *
 * Vehicle ids are the simulator's: a connection is one simulated fleet with id prefix
 * `<run prefix>-<connection number>`, so its cars are `<prefix>-00042-0001`, `...-0002`, ... (one
 * car per connection in car mode, a gateway's cars in gateway mode). Every id of a run starts with
 * `<run prefix>-`, which keeps the run's records countable on shared topics.
 */
import { vehicleIdsFor } from '@pitwall/simulator';

export interface Range {
  /** First index (0-based). */
  start: number;
  count: number;
}

/** `n` items over `parts` contiguous ranges, the first `n % parts` one larger; no empty range. */
export function splitEvenly(n: number, parts: number): Range[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be an integer >= 0, got ${n}`);
  if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`parts must be an integer >= 1, got ${parts}`);
  const k = Math.min(parts, n);
  const base = Math.floor(n / Math.max(k, 1));
  const extra = n - base * k;
  const out: Range[] = [];
  for (let i = 0, start = 0; i < k; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ start, count });
    start += count;
  }
  return out;
}

/** Which range of splitEvenly(n, parts) holds item `i`, and its position there. */
export function locate(i: number, n: number, parts: number): { part: number; offset: number } {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`index ${i} outside 0..${n - 1}`);
  const k = Math.min(parts, n);
  const base = Math.floor(n / k);
  const extra = n - base * k;
  const bigSpan = extra * (base + 1);
  if (i < bigSpan) return { part: Math.floor(i / (base + 1)), offset: i % (base + 1) };
  return { part: extra + Math.floor((i - bigSpan) / base), offset: (i - bigSpan) % base };
}

export interface ConnectionSpec {
  /** 0-based over the whole run. */
  index: number;
  /** Client id and fleet id prefix. */
  label: string;
  /** Number of cars it carries. */
  cars: number;
}

export function connectionLabel(prefix: string, index: number, connections: number): string {
  return `${prefix}-${String(index + 1).padStart(Math.max(5, String(connections).length), '0')}`;
}

export function connectionSpecs(prefix: string, cars: number, connections: number): ConnectionSpec[] {
  return splitEvenly(cars, connections).map((r, index) => ({ index, label: connectionLabel(prefix, index, connections), cars: r.count }));
}

/** The id of car `i` (0-based over the run): the same id its connection's simulated fleet gives it. */
export function vehicleIdOf(prefix: string, i: number, cars: number, connections: number): string {
  const { part, offset } = locate(i, cars, connections);
  const { count } = splitEvenly(cars, connections)[part]!;
  return vehicleIdsFor(count, connectionLabel(prefix, part, connections))[offset]!;
}

/** Connections per worker: worker w gets connections [start, start + count). */
export function workerSlices(connections: number, workers: number): Range[] {
  return splitEvenly(connections, workers);
}
