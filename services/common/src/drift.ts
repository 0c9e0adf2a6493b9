/**
 * Drift of live feature windows from a model's training data, pure.
 *
 * Reference (written into a model's metadata.json as `drift` by training): per feature, the inner
 * bin edges of quantile bins of the training windows (DRIFT_BINS, default 10; equal edges of a
 * feature with ties are merged, so such a feature has fewer bins) and the share of training
 * windows in each bin. The outer bins are open-ended: a live value below the lowest or above the
 * highest training quantile still lands in a bin. Bin i covers (edges[i-1], edges[i]].
 *
 * Population stability index of a feature: PSI = sum over bins (p_live - p_ref) * ln(p_live /
 * p_ref), where a share of 0 (an empty bin, live or reference) counts as PSI_EPSILON (1e-4), so an
 * empty bin adds a finite, bounded amount instead of infinity. The conventional reading: below 0.1
 * stable, 0.1 to 0.25 moderate, above 0.25 a significant shift. Small samples read high: with k
 * bins and n live windows of an unchanged distribution the expected PSI is about (k - 1) / n
 * (0.09 for 10 bins and 100 windows), which is why per-vehicle drift needs enough windows.
 *
 * Accumulators (bounded): a sliding period of the fleet's windows as a ring of time buckets of
 * counts per bin, and per vehicle its last K windows as two blocks of K/2 (at most 2 x bins x
 * features uint16 counts per vehicle: 4.3 kB with 108 features and 10 bins), least recently seen
 * vehicles evicted beyond a cap.
 */

export const DRIFT_BINS = 10;
/** The share an empty bin counts as in PSI (live or reference). */
export const PSI_EPSILON = 1e-4;
export const PSI_MODERATE = 0.1;
export const PSI_SIGNIFICANT = 0.25;

export type DriftReading = 'stable' | 'moderate' | 'significant';

export interface FeatureReference {
  /** Inner edges, strictly increasing; proportions has edges.length + 1 entries. */
  edges: number[];
  proportions: number[];
}

export interface DriftReference {
  /** Quantile bins asked for (a feature with ties may have fewer). */
  bins: number;
  /** How the reference was made, for people. */
  method: string;
  /** In the model's feature order. */
  features: FeatureReference[];
}

export function driftReading(psi: number): DriftReading {
  if (psi > PSI_SIGNIFICANT) return 'significant';
  if (psi >= PSI_MODERATE) return 'moderate';
  return 'stable';
}

/** The bin of `x`: how many edges lie below it. NaN goes to bin 0 (callers only pass finite values). */
export function binOf(edges: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Rounds to 7 significant digits (what the reference stores), keeping ordering of distinct values mostly intact. */
const round7 = (v: number): number => Number(v.toPrecision(7));

/**
 * The reference of one feature from its training values: quantile edges at i/bins (i = 1..bins-1,
 * nearest rank), merged when equal, then the share of the values in each resulting bin.
 */
export function featureReference(values: ArrayLike<number>, bins = DRIFT_BINS): FeatureReference {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) throw new RangeError('no training values');
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const e = round7(sorted[Math.min(n - 1, Math.floor((i * n) / bins))]!);
    if (edges.length === 0 || e > edges.at(-1)!) edges.push(e);
  }
  // The top edge at the maximum would leave the last bin empty by construction.
  while (edges.length > 0 && edges.at(-1)! >= sorted[n - 1]!) edges.pop();
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < n; i++) counts[binOf(edges, sorted[i]!)]!++;
  return { edges, proportions: counts.map((c) => Number((c / n).toFixed(6))) };
}

/** The reference of every feature of `vectors` (training windows, raw features in model order). */
export function buildDriftReference(vectors: readonly ArrayLike<number>[], bins = DRIFT_BINS, method?: string): DriftReference {
  if (vectors.length === 0) throw new RangeError('no training windows');
  const width = vectors[0]!.length;
  const column = new Float64Array(vectors.length);
  const features: FeatureReference[] = [];
  for (let f = 0; f < width; f++) {
    for (let i = 0; i < vectors.length; i++) column[i] = vectors[i]![f]!;
    features.push(featureReference(column, bins));
  }
  return { bins, method: method ?? `${bins} quantile bins of ${vectors.length} training windows, open-ended outer bins`, features };
}

/** What is wrong with a metadata `drift` block for `width` features, or undefined. */
export function describeDriftProblem(raw: unknown, width: number): string | undefined {
  const d = raw as Partial<DriftReference> | null;
  if (!d || typeof d !== 'object' || Array.isArray(d)) return 'drift must be {"bins", "method", "features": [{"edges", "proportions"}]}';
  if (typeof d.bins !== 'number' || !Number.isInteger(d.bins) || d.bins < 2 || d.bins > 255) return 'drift.bins must be an integer from 2 to 255';
  if (!Array.isArray(d.features) || d.features.length !== width) return `drift.features must have one entry per feature (${width})`;
  for (let f = 0; f < width; f++) {
    const x = d.features[f] as Partial<FeatureReference> | undefined;
    if (!x || !Array.isArray(x.edges) || !Array.isArray(x.proportions)) return `drift.features[${f}] needs edges and proportions`;
    if (x.proportions.length !== x.edges.length + 1 || x.proportions.length > d.bins) return `drift.features[${f}] has ${x.edges.length} edges and ${x.proportions.length} proportions`;
    if (!x.edges.every((e, i) => typeof e === 'number' && Number.isFinite(e) && (i === 0 || e > x.edges![i - 1]!))) return `drift.features[${f}].edges must be finite and increasing`;
    if (!x.proportions.every((p) => typeof p === 'number' && p >= 0 && p <= 1)) return `drift.features[${f}].proportions must be shares in [0, 1]`;
    const sum = x.proportions.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-3) return `drift.features[${f}].proportions sum to ${sum}, not 1`;
  }
  return undefined;
}

/** PSI of live counts (one per bin) against reference shares; null without any live window. */
export function psi(reference: ArrayLike<number>, counts: ArrayLike<number>, offset = 0): number | null {
  let n = 0;
  for (let i = 0; i < reference.length; i++) n += counts[offset + i]!;
  if (n === 0) return null;
  let sum = 0;
  for (let i = 0; i < reference.length; i++) {
    const live = Math.max(counts[offset + i]! / n, PSI_EPSILON);
    const ref = Math.max(reference[i]!, PSI_EPSILON);
    sum += (live - ref) * Math.log(live / ref);
  }
  return sum;
}

export interface FeatureDrift {
  feature: string;
  psi: number;
  reading: DriftReading;
}

/**
 * A reference compiled for counting: every feature's bins laid out in one flat array
 * (offsets[f] .. offsets[f + 1]), so a window's bins are `width` indexes into it.
 */
export interface DriftLayout {
  readonly reference: DriftReference;
  readonly features: readonly string[];
  readonly offsets: Uint16Array;
  readonly size: number;
  /** Flat bin index per feature of a window (into `out`, reused by the caller). */
  bin(vector: ArrayLike<number>, out: Uint16Array): Uint16Array;
  /** PSI per feature of flat counts, highest first; features without windows are left out. */
  drift(counts: ArrayLike<number>): FeatureDrift[];
}

export function driftLayout(reference: DriftReference, features: readonly string[]): DriftLayout {
  const problem = describeDriftProblem(reference, features.length);
  if (problem) throw new RangeError(problem);
  const offsets = new Uint16Array(features.length + 1);
  reference.features.forEach((f, i) => (offsets[i + 1] = offsets[i]! + f.proportions.length));
  // Every feature's edges in one array (feature f's are edgeStart[f] .. edgeStart[f + 1]): the
  // hot path (bin, per window) is one monomorphic loop with the binary search inlined.
  const edgeStart = new Uint16Array(features.length + 1);
  reference.features.forEach((f, i) => (edgeStart[i + 1] = edgeStart[i]! + f.edges.length));
  const edges = Float64Array.from(reference.features.flatMap((f) => f.edges));
  const width = features.length;
  return {
    reference,
    features,
    offsets,
    size: offsets[width]!,
    bin(vector, out) {
      for (let f = 0; f < width; f++) {
        const x = vector[f]!;
        const first = edgeStart[f]!;
        let lo = first;
        let hi = edgeStart[f + 1]!;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (edges[mid]! < x) lo = mid + 1;
          else hi = mid;
        }
        out[f] = offsets[f]! + lo - first;
      }
      return out;
    },
    drift(counts) {
      const out: FeatureDrift[] = [];
      reference.features.forEach((f, i) => {
        const p = psi(f.proportions, counts, offsets[i]);
        if (p !== null) out.push({ feature: features[i]!, psi: p, reading: driftReading(p) });
      });
      return out.sort((a, b) => b.psi - a.psi);
    },
  };
}

/** A summary of per-feature drift: the highest PSI, how many features read significant, the top few. */
export interface DriftSummary {
  windows: number;
  max_psi: number | null;
  reading: DriftReading | null;
  significant: number;
  top: FeatureDrift[];
}

export function summarizeDrift(drift: readonly FeatureDrift[], windows: number, top = 5): DriftSummary {
  const max = drift.length ? drift[0]!.psi : null;
  return {
    windows,
    max_psi: max,
    reading: max === null ? null : driftReading(max),
    significant: drift.filter((d) => d.psi > PSI_SIGNIFICANT).length,
    top: drift.slice(0, top),
  };
}

/**
 * Fleet windows over the last `periodMs`, in `buckets` time buckets (a window counts from when it
 * was added until its bucket leaves the period; the period covered is therefore between
 * periodMs - periodMs / buckets and periodMs). Memory: buckets x layout.size uint32.
 */
export interface SlidingDrift {
  add(bins: Uint16Array, at: number): void;
  /** Counts per flat bin and the number of windows in the period ending at `at`. */
  counts(at: number): { counts: Uint32Array; windows: number };
}

export function createSlidingDrift(layout: Pick<DriftLayout, 'size'>, opts: { periodMs: number; buckets?: number }): SlidingDrift {
  const buckets = opts.buckets ?? 15;
  const width = opts.periodMs / buckets;
  const ring = Array.from({ length: buckets }, () => ({ slot: -1, windows: 0, counts: new Uint32Array(layout.size) }));
  const slotOf = (at: number): number => Math.floor(at / width);
  return {
    add(bins, at) {
      const slot = slotOf(at);
      const b = ring[((slot % buckets) + buckets) % buckets]!;
      if (b.slot !== slot) {
        b.slot = slot;
        b.windows = 0;
        b.counts.fill(0);
      }
      b.windows++;
      for (let i = 0; i < bins.length; i++) b.counts[bins[i]!]!++;
    },
    counts(at) {
      const now = slotOf(at);
      const counts = new Uint32Array(layout.size);
      let windows = 0;
      for (const b of ring) {
        if (b.slot > now - buckets && b.slot <= now) {
          windows += b.windows;
          for (let i = 0; i < counts.length; i++) counts[i]! += b.counts[i]!;
        }
      }
      return { counts, windows };
    },
  };
}

/**
 * Per vehicle, its last `windows` windows (between windows/2 and windows of them: two blocks of
 * windows/2, the older dropped when the newer is full), for at most `maxVehicles` vehicles (the
 * least recently seen is forgotten). Memory per vehicle: 2 x layout.size uint16.
 */
export interface VehicleDrift {
  add(vehicleId: string, bins: Uint16Array): void;
  counts(vehicleId: string): { counts: Uint16Array; windows: number } | undefined;
  /** Vehicles with a window added since the last call, and forgets that list. */
  takeChanged(): string[];
  size(): number;
}

export function createVehicleDrift(layout: Pick<DriftLayout, 'size'>, opts: { windows: number; maxVehicles: number }): VehicleDrift {
  const half = Math.max(1, Math.floor(opts.windows / 2));
  type Entry = { cur: Uint16Array; prev: Uint16Array; curN: number; prevN: number };
  const vehicles = new Map<string, Entry>();
  let changed = new Set<string>();
  return {
    add(vehicleId, bins) {
      let e = vehicles.get(vehicleId);
      if (e) vehicles.delete(vehicleId);
      else {
        if (vehicles.size >= opts.maxVehicles) {
          // The least recently seen vehicle is forgotten; its counts are reused (no allocation).
          const [oldest, reused] = vehicles.entries().next().value!;
          vehicles.delete(oldest);
          changed.delete(oldest);
          reused.cur.fill(0);
          reused.prev.fill(0);
          reused.curN = 0;
          reused.prevN = 0;
          e = reused;
        } else e = { cur: new Uint16Array(layout.size), prev: new Uint16Array(layout.size), curN: 0, prevN: 0 };
      }
      vehicles.set(vehicleId, e); // most recently seen last
      if (e.curN === half) {
        [e.prev, e.cur] = [e.cur, e.prev];
        e.cur.fill(0);
        e.prevN = e.curN;
        e.curN = 0;
      }
      for (let i = 0; i < bins.length; i++) e.cur[bins[i]!]!++;
      e.curN++;
      changed.add(vehicleId);
    },
    counts(vehicleId) {
      const e = vehicles.get(vehicleId);
      if (!e) return undefined;
      const counts = new Uint16Array(layout.size);
      for (let i = 0; i < counts.length; i++) counts[i] = e.cur[i]! + e.prev[i]!;
      return { counts, windows: e.curN + e.prevN };
    },
    takeChanged() {
      const out = [...changed];
      changed = new Set();
      return out;
    },
    size: () => vehicles.size,
  };
}
