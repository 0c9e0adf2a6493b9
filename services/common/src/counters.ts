/**
 * In-process counters keyed by metric name (and an optional reason label). Each service lists its
 * metric names in its own metrics.ts; a Prometheus exporter will read snapshot().
 */
export interface Counters {
  inc(name: string, by?: number, reason?: string): void;
  get(name: string): number;
  snapshot(): Record<string, number>;
}

/** `names` start at 0, so a snapshot lists every counter even before it first moves. */
export function createCounters(names: readonly string[] = []): Counters {
  const counters: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  return {
    get: (name) => counters[name] ?? 0,
    inc(name, by = 1, reason) {
      const key = reason ? `${name}{reason="${reason}"}` : name;
      counters[key] = (counters[key] ?? 0) + by;
    },
    snapshot: () => ({ ...counters }),
  };
}
