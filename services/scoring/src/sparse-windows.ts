/**
 * Says when windows are too sparse to score. A window with fewer readings than the model's window
 * needs (size × rate × coverage) is skipped; a fleet that reports slower than the model's rate
 * (the reference demo's cars send one reading every ~10 s) would otherwise score nothing, with only
 * a counter to show for it. At most once per `everyMs`: a warning with how many windows were
 * skipped, how full they were and what the model needs; an error when nothing at all was scored.
 */
import type { Logger } from '@pitwall/common';

export interface SparseWindowNotice {
  /** One chunk: the event counts of the windows it skipped, how many it scored, what the model needs. */
  observe(chunk: { skipped: readonly number[]; scored: number; minEvents: number; window: { sizeMs: number; rateHz: number } }): void;
}

export function createSparseWindowNotice(log: Pick<Logger, 'warn' | 'error'>, now: () => number, everyMs = 60_000): SparseWindowNotice {
  let skipped = 0;
  let scored = 0;
  let fewest = Number.POSITIVE_INFINITY;
  let most = 0;
  let lastAt: number | undefined;
  return {
    observe(chunk) {
      skipped += chunk.skipped.length;
      scored += chunk.scored;
      for (const n of chunk.skipped) {
        fewest = Math.min(fewest, n);
        most = Math.max(most, n);
      }
      const at = now();
      if (skipped === 0 || (lastAt !== undefined && at - lastAt < everyMs)) return;
      const level = scored === 0 ? 'error' : 'warn';
      log[level](scored === 0 ? 'no window had enough readings to score: nothing is scored' : 'windows skipped: too few readings to score', {
        skipped,
        scored,
        readingsPerWindow: { min: fewest, max: most },
        minReadings: chunk.minEvents,
        modelWindow: chunk.window,
        hint: `the model needs ${chunk.minEvents} readings per ${chunk.window.sizeMs / 1000} s window (trained at ${chunk.window.rateHz} Hz); cars reporting less often need a model trained for their rate (docs/models.md)`,
      });
      lastAt = at;
      skipped = 0;
      scored = 0;
      fewest = Number.POSITIVE_INFINITY;
      most = 0;
    },
  };
}
