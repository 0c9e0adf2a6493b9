/**
 * Says when windows are too sparse to score. A window with fewer readings than the model's window
 * needs (size × rate × coverage) is skipped; a fleet that reports slower than the model's rate
 * (the reference demo's cars send one reading every ~10 s) would otherwise score nothing, with only
 * a counter to show for it. Judged over periods of `everyMs`: a warning when a period skipped more
 * windows than it scored, an error when it scored none, naming how many cars and the ten with the
 * most skipped windows. A car's first and last windows are partial by nature; they stay below that
 * bar and are only counted.
 */
import type { Logger } from '@pitwall/common';

export interface SparseWindowNotice {
  /** One chunk: the windows it skipped (car, readings), how many it scored, what the model needs. */
  observe(chunk: { skipped: readonly SkippedWindow[]; scored: number; minEvents: number; window: { sizeMs: number; rateHz: number } }): void;
}

export interface SkippedWindow {
  vehicleId: string;
  events: number;
}

/** Cars named in one line. */
const NAMED_CARS = 10;

export function createSparseWindowNotice(log: Pick<Logger, 'warn' | 'error'>, now: () => number, everyMs = 60_000): SparseWindowNotice {
  let skipped = 0;
  let scored = 0;
  let fewest = Number.POSITIVE_INFINITY;
  let most = 0;
  const byCar = new Map<string, number>();
  let periodStart: number | undefined;
  return {
    observe(chunk) {
      const at = now();
      periodStart ??= at;
      skipped += chunk.skipped.length;
      scored += chunk.scored;
      for (const { vehicleId, events } of chunk.skipped) {
        fewest = Math.min(fewest, events);
        most = Math.max(most, events);
        byCar.set(vehicleId, (byCar.get(vehicleId) ?? 0) + 1);
      }
      if (at - periodStart < everyMs) return;
      if (skipped > scored) {
        const none = scored === 0;
        log[none ? 'error' : 'warn'](none ? 'no window had enough readings to score: nothing is scored' : 'most windows skipped: too few readings to score', {
          skipped,
          scored,
          seconds: Math.round((at - periodStart) / 1000),
          readingsPerWindow: { min: fewest, max: most },
          cars: byCar.size,
          mostSkipped: [...byCar]
            .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
            .slice(0, NAMED_CARS)
            .map(([car, n]) => `${car}: ${n}`),
          minReadings: chunk.minEvents,
          modelWindow: chunk.window,
          hint: `the model needs ${chunk.minEvents} readings per ${chunk.window.sizeMs / 1000} s window (trained at ${chunk.window.rateHz} Hz); cars reporting less often need a model trained for their rate (docs/models.md)`,
        });
      }
      periodStart = at;
      skipped = 0;
      scored = 0;
      fewest = Number.POSITIVE_INFINITY;
      most = 0;
      byCar.clear();
    },
  };
}

export interface UnroutedNotice {
  /** One chunk: the sizes of the windows no served model declares (one entry per window), and the sizes served. */
  observe(sizes: readonly number[], served: readonly number[]): void;
}

/**
 * Says when windows go unscored because no served model declares their size (routes.ts): a warning
 * at the first such window, then at most one per `everyMs` while they keep coming, with the count
 * per size since the last one and the sizes that are served.
 */
export function createUnroutedNotice(log: Pick<Logger, 'warn'>, now: () => number, everyMs = 60_000): UnroutedNotice {
  const bySize = new Map<number, number>();
  let last: number | undefined;
  return {
    observe(sizes, served) {
      for (const size of sizes) bySize.set(size, (bySize.get(size) ?? 0) + 1);
      if (bySize.size === 0) return;
      const at = now();
      if (last !== undefined && at - last < everyMs) return;
      last = at;
      const windows = Object.fromEntries([...bySize].sort((a, b) => a[0] - b[0]).map(([size, n]) => [`${size}`, n]));
      log.warn('windows of a size no served model declares: counted, not scored', {
        windows,
        servedWindowsMs: [...served].sort((a, b) => a - b),
        hint: 'train a model for that window (npm run train -- --window <s>) and add its name to MODEL_NAME, or stop computing the size (WINDOW_SIZES_MS); docs/models.md',
      });
      bySize.clear();
    },
  };
}
