/**
 * Safe model swaps. The holder serves one active model; a candidate (a newly dropped version
 * directory, already loaded and structurally validated by loadModelDir) must also give finite
 * scores on a warm-up batch of real feature windows recently seen by the service before it is
 * served. A swap happens between batches: scoring reads `current()` once per batch, so no batch
 * is scored by two models or by a half-loaded one. The previous model is kept for rollback; the
 * one before it is disposed, so tensors do not accumulate across swaps.
 */
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '@pitwall/common';
import { formatOf, inputKindOf, type LoadedModel, scoreBatch } from '@pitwall/model';

export interface ModelSource {
  current(): LoadedModel;
}

export type Offer = { accepted: true } | { accepted: false; reason: string };

export interface ModelHolder extends ModelSource {
  /** Validates and, if it passes, serves the candidate from the next batch on. A refused candidate is disposed. */
  offer(candidate: LoadedModel): Offer;
  /**
   * The checks offer() runs (input width, finite warm-up scores), without swapping or disposing:
   * why the candidate may not serve, or undefined when it may. Used for shadow candidates.
   */
  validate(candidate: LoadedModel): string | undefined;
  /** Serves the previous model again. False when there is none. */
  rollback(): boolean;
  /** Feature vectors of real windows, kept (bounded) for warm-up predictions of candidates. */
  remember(vectors: readonly Float32Array[]): void;
  dispose(): void;
}

const label = (m: LoadedModel): string => `${m.metadata.name}@${m.metadata.version}`;

export function createModelHolder(initial: LoadedModel, opts: { log: Logger; warmupSize?: number }): ModelHolder {
  const warmupSize = opts.warmupSize ?? 64;
  let active = initial;
  let previous: LoadedModel | undefined;
  const recent: Float32Array[] = [];

  const warmupBatch = (m: LoadedModel): Float32Array[] => {
    // Always includes the training mean, so a candidate is exercised before any window was seen.
    const mean = Float32Array.from(m.metadata.normalization.mean);
    return [mean, ...recent.filter((v) => v.length === m.metadata.features.length)];
  };

  const validate = (candidate: LoadedModel): string | undefined => {
    // One deployment consumes one input kind (SCORING_INPUT): window features or readings.
    const [kind, served] = [inputKindOf(candidate.metadata), inputKindOf(active.metadata)];
    if (kind !== served) {
      return `declares a ${kind} input, the served version a ${served} input (a scoring deployment serves one input kind, SCORING_INPUT; serve it from a deployment of its kind)`;
    }
    if (candidate.metadata.features.length !== active.metadata.features.length) {
      return `input width ${candidate.metadata.features.length} differs from the served feature spec (${active.metadata.features.length})`;
    }
    // Scores, the shadow and warm-ups hand a version the served version's vectors: same names, same order.
    const other = candidate.metadata.features.findIndex((f, i) => f !== active.metadata.features[i]);
    if (other >= 0) {
      return `takes other inputs than the served version (input ${other}: ${candidate.metadata.features[other]}, served: ${active.metadata.features[other]}); import a model of other inputs under another name`;
    }
    // Windows are routed to models by the size they declare (routes.ts): a version may not change it.
    if (candidate.metadata.window.sizeMs !== active.metadata.window.sizeMs) {
      return `declares ${candidate.metadata.window.sizeMs} ms windows, the served version ${active.metadata.window.sizeMs} ms (windows are routed by size; train another window under another model name)`;
    }
    try {
      const scored = scoreBatch(candidate.model, candidate.metadata, warmupBatch(candidate));
      const bad = scored.findIndex((s) => !Number.isFinite(s.score));
      if (bad >= 0) return `warm-up prediction gave a non-finite score (${scored[bad]!.score}) on window ${bad}`;
    } catch (err) {
      return `warm-up prediction failed: ${(err as Error).message}`;
    }
    return undefined;
  };

  return {
    current: () => active,
    validate,
    offer(candidate) {
      const reason = validate(candidate);
      if (reason) {
        opts.log.warn('model refused; the active model keeps serving', { candidate: label(candidate), dir: candidate.dir, active: label(active), reason });
        candidate.model.dispose();
        return { accepted: false, reason };
      }
      previous?.model.dispose();
      previous = active;
      active = candidate;
      opts.log.info('model swapped', { active: label(active), previous: label(previous), threshold: active.metadata.threshold, format: formatOf(active.model) });
      return { accepted: true };
    },
    rollback() {
      if (!previous) return false;
      [active, previous] = [previous, active];
      opts.log.info('model rolled back', { active: label(active), previous: label(previous) });
      return true;
    },
    remember(vectors) {
      for (const v of vectors) {
        recent.push(v);
        if (recent.length > warmupSize) recent.shift();
      }
    },
    dispose() {
      active.model.dispose();
      previous?.model.dispose();
      previous = undefined;
    },
  };
}

/** tf.memory() tensor count, for leak checks. */
export const liveTensors = (): number => tf.memory().numTensors;
