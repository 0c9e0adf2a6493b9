/**
 * Latency summaries: nearest-rank percentiles (the smallest value with at least p % of the values
 * at or below it), so every reported number is one that was measured. Pure.
 */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** Nearest-rank percentile of values sorted ascending; p in (0, 100]. */
export function nearestRank(sorted: readonly number[], p: number): number | undefined {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (sorted.length === 0) return undefined;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function summarize(values: readonly number[]): LatencySummary {
  const finite = values.filter((v) => Number.isFinite(v));
  const sorted = [...finite].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: nearestRank(sorted, 50) ?? null,
    p99: nearestRank(sorted, 99) ?? null,
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : null,
  };
}
