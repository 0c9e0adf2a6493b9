/**
 * Picks up new model versions: when MODEL_VERSION is `latest`, the models folder is polled and a
 * newly dropped, higher version directory is loaded in the background (loadModelDir validates its
 * files, shape and weights) and offered to the holder (which runs the warm-up prediction). A
 * version that fails is refused with a log line and counted, and is not tried again until its
 * files change (a directory still being copied is retried on the next poll once complete).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Counters, Logger } from '@pitwall/common';
import { loadModelDir, METADATA_JSON, MODEL_JSON, resolveVersion, type LoadedModel } from '@pitwall/model';
import type { ModelHolder } from './model-holder.js';
import { METRICS } from './metrics.js';

export type CheckResult = 'unchanged' | 'swapped' | 'refused';

export interface ModelWatcher {
  check(): Promise<CheckResult>;
  start(): void;
  stop(): void;
}

export function createModelWatcher(opts: {
  modelsDir: string;
  name: string;
  holder: ModelHolder;
  pollMs: number;
  log: Logger;
  counters: Counters;
  load?: (dir: string) => Promise<LoadedModel>;
  /**
   * Whether the directory decides the version right now (default: always). False while a
   * model.updates event pins a version: an explicit event beats the directory watch.
   */
  enabled?: () => boolean;
}): ModelWatcher {
  const load = opts.load ?? ((dir: string) => loadModelDir(dir));
  const refused = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<CheckResult> | undefined;

  const fingerprint = async (dir: string): Promise<string> => {
    const times = await Promise.all(
      [METADATA_JSON, MODEL_JSON].map((f) =>
        stat(path.join(dir, f)).then(
          (s) => s.mtimeMs,
          () => 0,
        ),
      ),
    );
    return `${dir}@${times.join('/')}`;
  };

  const check = async (): Promise<CheckResult> => {
    if (opts.enabled && !opts.enabled()) return 'unchanged';
    let latest: { version: string; dir: string };
    try {
      latest = await resolveVersion(opts.modelsDir, opts.name, 'latest');
    } catch {
      return 'unchanged';
    }
    if (path.resolve(latest.dir) === path.resolve(opts.holder.current().dir)) return 'unchanged';
    const print = await fingerprint(latest.dir);
    if (refused.has(print)) return 'unchanged';
    let candidate: LoadedModel;
    try {
      candidate = await load(latest.dir);
      // A version pinned while this one was loading wins.
      if (opts.enabled && !opts.enabled()) {
        candidate.model.dispose();
        return 'unchanged';
      }
    } catch (err) {
      refused.add(print);
      opts.counters.inc(METRICS.modelsRefused);
      opts.log.warn('model version refused; the active model keeps serving', { dir: latest.dir, reason: (err as Error).message });
      return 'refused';
    }
    const offer = opts.holder.offer(candidate);
    if (!offer.accepted) {
      refused.add(print);
      opts.counters.inc(METRICS.modelsRefused);
      return 'refused';
    }
    opts.counters.inc(METRICS.modelSwaps);
    return 'swapped';
  };

  return {
    check: () => (running ??= check().finally(() => (running = undefined))),
    start() {
      timer = setInterval(() => {
        void (running ??= check().finally(() => (running = undefined))).catch((err: unknown) => opts.log.warn('model poll failed', { err }));
      }, opts.pollMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
