/**
 * Applies model.updates events (model-updates.ts) to one replica: the active version through the
 * holder's checked swap, the shadow through the shadow scorer, and whether the directory watch may
 * swap. Events are applied one at a time, in log order; a version that cannot be loaded or fails
 * the checks is refused with a log line and a counter, and what served before keeps serving.
 */
import type { Counters, Logger } from '@pitwall/common';
import { type LoadedModel, loadModelDir, type ModelUpdateEvent, type ModelUpdateState, resolveVersion } from '@pitwall/model';
import type { ModelHolder } from './model-holder.js';
import { METRICS } from './metrics.js';
import type { ShadowScorer } from './shadow.js';

export type ApplyResult = 'swapped' | 'unchanged' | 'refused' | 'ignored';

export interface ModelControl {
  apply(event: ModelUpdateEvent): Promise<ApplyResult>;
  /** For the directory watcher: true unless an event pinned a numeric version. */
  watchEnabled(): boolean;
  /** Sets the shadow at start-up (from the folded log or MODEL_SHADOW_VERSION). */
  setShadow(version: string | null): Promise<ApplyResult>;
}

/** Loads models/<name>/<version> (numeric); throws ModelDirError. */
export async function loadVersion(modelsDir: string, name: string, version: string, load = loadModelDir): Promise<LoadedModel> {
  const { dir } = await resolveVersion(modelsDir, name, version);
  return load(dir);
}

/**
 * Which version to load at start-up: an activate/rollback in the log beats MODEL_VERSION, and the
 * directory watch runs when the result is "latest". Pure.
 */
export function startupVersion(state: Pick<ModelUpdateState, 'active'>, envVersion: string): { version: string; pinnedByEvent: boolean } {
  if (state.active === undefined) return { version: envVersion, pinnedByEvent: false };
  return { version: state.active, pinnedByEvent: state.active !== 'latest' };
}

/** Shadow at start-up: a shadow/unshadow event beats MODEL_SHADOW_VERSION. Pure. */
export function startupShadow(state: Pick<ModelUpdateState, 'shadow'>, envShadow: string | undefined): string | null {
  return state.shadow !== undefined ? state.shadow : (envShadow ?? null);
}

export function createModelControl(opts: {
  modelsDir: string;
  name: string;
  holder: ModelHolder;
  shadow: ShadowScorer;
  log: Logger;
  counters: Counters;
  /** Whether an event pinned the start-up version (startupVersion().pinnedByEvent). */
  pinned: boolean;
  /** The MODEL_VERSION setting: only "latest" lets the directory decide when no event pinned a version. */
  envVersion: string;
  /** Asks the directory watch to look now (after an activate of "latest"). */
  checkDirectory?: () => Promise<unknown>;
  load?: (dir: string) => Promise<LoadedModel>;
}): ModelControl {
  const log = opts.log.child({ component: 'model-control' });
  const load = opts.load ?? ((dir: string) => loadModelDir(dir));
  // undefined: no event yet (MODEL_VERSION decides); true: a numeric version; false: "latest".
  let pinned: boolean | undefined = opts.pinned ? true : undefined;

  const refuse = (what: string, version: string, reason: string): ApplyResult => {
    opts.counters.inc(METRICS.modelsRefused);
    log.warn(`${what} version refused; the ${what === 'model' ? 'active model' : 'previous shadow'} keeps serving`, { name: opts.name, version, reason });
    return 'refused';
  };

  const activate = async (version: string): Promise<ApplyResult> => {
    if (version === 'latest') {
      pinned = false;
      log.info('model version follows the models directory again', { name: opts.name });
      await opts.checkDirectory?.();
      return 'unchanged';
    }
    pinned = true;
    const served = opts.holder.current().metadata;
    if (served.name === opts.name && served.version === version) return 'unchanged';
    let candidate: LoadedModel;
    try {
      candidate = await loadVersion(opts.modelsDir, opts.name, version, load);
    } catch (err) {
      return refuse('model', version, (err as Error).message);
    }
    const offer = opts.holder.offer(candidate);
    if (!offer.accepted) return refuse('model', version, offer.reason);
    opts.counters.inc(METRICS.modelSwaps);
    return 'swapped';
  };

  const setShadow = async (version: string | null): Promise<ApplyResult> => {
    if (version === null) {
      if (!opts.shadow.current()) return 'unchanged';
      opts.shadow.clear();
      return 'swapped';
    }
    const current = opts.shadow.current()?.metadata;
    if (current && current.name === opts.name && current.version === version) return 'unchanged';
    let candidate: LoadedModel;
    try {
      candidate = await loadVersion(opts.modelsDir, opts.name, version, load);
    } catch (err) {
      return refuse('shadow', version, (err as Error).message);
    }
    const offer = opts.shadow.offer(candidate, (m) => opts.holder.validate(m));
    if (!offer.accepted) return refuse('shadow', version, offer.reason);
    return 'swapped';
  };

  return {
    watchEnabled: () => (pinned === undefined ? opts.envVersion === 'latest' : !pinned),
    setShadow,
    async apply(event) {
      if (event.model !== opts.name) return 'ignored';
      log.info('model update', { action: event.action, version: event.version, issued_by: event.issued_by, issued_at: event.issued_at });
      opts.counters.inc(METRICS.modelUpdatesApplied);
      switch (event.action) {
        case 'activate':
        case 'rollback':
          return activate(event.version!);
        case 'shadow':
          return setShadow(event.version);
        case 'unshadow':
          return setShadow(null);
      }
    },
  };
}
