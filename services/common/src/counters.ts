/**
 * In-process counters keyed by metric name (and an optional reason label). Each service lists its
 * metric names in its own metrics.ts; a Prometheus exporter will read snapshot().
 */
export interface Counters {
  inc(name: string, by?: number, reason?: string): void;
  snapshot(): Record<string, number>;
}

export function createCounters(): Counters {
  const counters: Record<string, number> = {};
  return {
    inc(name, by = 1, reason) {
      const key = reason ? `${name}{reason="${reason}"}` : name;
      counters[key] = (counters[key] ?? 0) + by;
    },
    snapshot: () => ({ ...counters }),
  };
}
