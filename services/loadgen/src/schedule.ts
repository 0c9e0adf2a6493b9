/**
 * When each sender (a car, or a gateway with all its cars) samples and publishes. Pure.
 *
 * Sender s has slots origin + phase_s + k * period (k = 0, 1, ...), period = 1000 / rate /
 * timeScale wall ms, and a fixed phase in [0, period) so the fleet's sends spread over the period
 * instead of arriving together. Each send moves from its slot by a uniform jitter of up to
 * ±jitter/2 periods, drawn from the sender's own seeded stream. Jitter is anchored to the slot,
 * not to the previous send, so the rate has no drift; with jitter < 1 sends stay in order.
 *
 * The reading's event time stays on the slot grid, exactly one sampling period (1000 / rate ms)
 * apart: a car samples on a steady clock, only its transmission jitters. (Jittered event times
 * made the simulator's car model step its physics in slivers of a few ms, and a car coming to a
 * stop in such a sliver reads as a deceleration spike of over 1.5 g: healthy windows scored over
 * the model's threshold.)
 *
 * DueQueue is a binary min-heap of (due time, sender) for a worker's event loop.
 */
import type { Rng } from '@pitwall/simulator';

export interface Cadence {
  /** Epoch ms of slot 0 without phase. */
  origin: number;
  /** Wall ms between slots. */
  periodMs: number;
  /** In [0, periodMs). */
  phaseMs: number;
  /** In [0, 1): a send is within ±jitter/2 periods of its slot. */
  jitter: number;
}

export function makeCadence(o: { origin: number; rateHz: number; timeScale: number; jitter: number; phase: number }): Cadence {
  if (!(o.rateHz > 0) || !(o.timeScale > 0)) throw new RangeError('rate and time scale must be > 0');
  if (!(o.jitter >= 0 && o.jitter < 1)) throw new RangeError(`jitter must be in [0, 1), got ${o.jitter}`);
  if (!(o.phase >= 0 && o.phase < 1)) throw new RangeError(`phase must be in [0, 1), got ${o.phase}`);
  const periodMs = 1000 / o.rateHz / o.timeScale;
  return { origin: o.origin, periodMs, phaseMs: o.phase * periodMs, jitter: o.jitter };
}

export const slotAt = (c: Cadence, k: number): number => c.origin + c.phaseMs + k * c.periodMs;

/** Due time of slot k for a uniform draw u in [0, 1). */
export const dueAt = (c: Cadence, k: number, u: number): number => slotAt(c, k) + (u - 0.5) * c.jitter * c.periodMs;

/** The first slot at or after wall time `t` (never before slot 0). */
export function firstSlotFrom(c: Cadence, t: number): number {
  return Math.max(0, Math.ceil((t - c.origin - c.phaseMs) / c.periodMs - 1e-9));
}

/** Event time of slot k: the first slot's event time plus k whole sampling periods (ms). */
export function sampleTs(firstTs: number, rateHz: number, k: number): number {
  return firstTs + Math.round((k * 1000) / rateHz);
}

/** A sender's successive slots (k) and due times, starting with the first slot at or after `from`. */
export function createTicker(c: Cadence, rng: Pick<Rng, 'next'>, from: number): { next: () => { k: number; due: number } } {
  let k = firstSlotFrom(c, from);
  return {
    next() {
      const slot = k++;
      return { k: slot, due: dueAt(c, slot, rng.next()) };
    },
  };
}

export class DueQueue<T> {
  private readonly due: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.due.length;
  }

  /** Due time of the earliest entry, or undefined when empty. */
  peek(): number | undefined {
    return this.due[0];
  }

  push(due: number, item: T): void {
    let i = this.due.length;
    this.due.push(due);
    this.items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.due[parent]! <= due) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes and returns the earliest entry. */
  pop(): { due: number; item: T } | undefined {
    const n = this.due.length;
    if (n === 0) return undefined;
    const top = { due: this.due[0]!, item: this.items[0]! };
    this.swap(0, n - 1);
    this.due.pop();
    this.items.pop();
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n - 1 && this.due[l]! < this.due[m]!) m = l;
      if (r < n - 1 && this.due[r]! < this.due[m]!) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  private swap(a: number, b: number): void {
    [this.due[a], this.due[b]] = [this.due[b]!, this.due[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }
}
