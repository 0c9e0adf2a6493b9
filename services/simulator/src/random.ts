/**
 * Deterministic randomness. Everything the simulator draws comes from a seeded mulberry32 stream so
 * that a (seed, failures, tick timestamps) triple always yields the same fleet output.
 */
import { mulberry32 } from '@pitwall/common';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(min: number, max: number): number;
  /** Gaussian via Box-Muller. */
  normal(mean?: number, sd?: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

export { mulberry32 };

/** FNV-1a over the parts' string forms, so independent streams (per car, per failure) get unrelated seeds. */
export function hashSeed(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function createRng(seed: number): Rng {
  const next = mulberry32(seed);
  let spare: number | undefined;
  const rng: Rng = {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    normal(mean = 0, sd = 1) {
      if (spare !== undefined) {
        const z = spare;
        spare = undefined;
        return mean + sd * z;
      }
      const u = 1 - next(); // (0, 1]: log(u) is finite
      const r = Math.sqrt(-2 * Math.log(u));
      const theta = 2 * Math.PI * next();
      spare = r * Math.sin(theta);
      return mean + sd * r * Math.cos(theta);
    },
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
  return rng;
}
