/**
 * Window definition: event-time windows aligned to the epoch. A window covers [start, start + size)
 * with start a multiple of `advance`. Tumbling: advance === size; hopping: advance < size.
 * Pure functions of explicit timestamps; aggregation and emission policy live elsewhere.
 */
export interface WindowDef {
  readonly sizeMs: number;
  readonly advanceMs: number;
  readonly graceMs: number;
}

export function windowDef(sizeMs: number, advanceMs: number = sizeMs, graceMs = 0): WindowDef {
  if (!Number.isInteger(sizeMs) || sizeMs <= 0) throw new RangeError(`window size must be a positive integer (ms), got ${sizeMs}`);
  if (!Number.isInteger(advanceMs) || advanceMs <= 0 || advanceMs > sizeMs) {
    throw new RangeError(`window advance must be an integer in 1..size (ms), got ${advanceMs}`);
  }
  if (!Number.isInteger(graceMs) || graceMs < 0) throw new RangeError(`grace must be a non-negative integer (ms), got ${graceMs}`);
  return Object.freeze({ sizeMs, advanceMs, graceMs });
}

const floorTo = (ts: number, step: number): number => Math.floor(ts / step) * step;

/** Starts of every window containing `ts`, ascending. */
export function windowStartsFor(def: WindowDef, ts: number): number[] {
  const last = floorTo(ts, def.advanceMs);
  const starts: number[] = [];
  for (let s = floorTo(ts - def.sizeMs + def.advanceMs, def.advanceMs); s <= last; s += def.advanceMs) {
    if (s > ts - def.sizeMs) starts.push(s);
  }
  return starts;
}

/** A window is final once the watermark (greatest event time seen) has passed end + grace. */
export function isWindowClosed(def: WindowDef, windowStart: number, watermark: number): boolean {
  return watermark >= windowStart + def.sizeMs + def.graceMs;
}
