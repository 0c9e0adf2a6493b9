import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createCounters, silentLogger } from '@pitwall/common';
import { createModelControl, startupShadow, startupVersion } from '../src/model-control.js';
import { type LoadedModel, MODEL_UPDATE_SCHEMA, ModelDirError, type ModelUpdateAction, type ModelUpdateEvent } from '@pitwall/model';
import { createModelHolder } from '../src/model-holder.js';
import { METRICS } from '../src/metrics.js';
import { createShadowScorer } from '../src/shadow.js';
import { linearModel, metadataFor, withTmpDir } from '@pitwall/model/testing';

before(async () => {
  await tf.setBackend('cpu');
});

const NAME = 'pitwall-ae';
const ev = (action: ModelUpdateAction, version: string | null, model = NAME): ModelUpdateEvent => ({ schema: MODEL_UPDATE_SCHEMA, model, action, version, issued_at: 0, issued_by: 't' });
const model = (version: string, bias = 0): LoadedModel => ({ model: linearModel(1, bias), metadata: metadataFor({ name: NAME, version }), dir: `/m/${NAME}/${version}` });

describe('start-up precedence', () => {
  const cases: [string, string | undefined, string, { version: string; pinnedByEvent: boolean }][] = [
    ['no event: MODEL_VERSION latest', undefined, 'latest', { version: 'latest', pinnedByEvent: false }],
    ['no event: MODEL_VERSION pinned', undefined, '1', { version: '1', pinnedByEvent: false }],
    ['an activation beats MODEL_VERSION=latest', '2', 'latest', { version: '2', pinnedByEvent: true }],
    ['an activation beats a pinned MODEL_VERSION', '2', '1', { version: '2', pinnedByEvent: true }],
    ['activate latest: the directory decides', 'latest', '1', { version: 'latest', pinnedByEvent: false }],
  ];
  for (const [name, active, env, want] of cases) it(name, () => assert.deepEqual(startupVersion({ active }, env), want));
  it('shadow: an event (even unshadow) beats MODEL_SHADOW_VERSION', () => {
    assert.equal(startupShadow({ shadow: undefined }, undefined), null);
    assert.equal(startupShadow({ shadow: undefined }, '3'), '3');
    assert.equal(startupShadow({ shadow: '4' }, '3'), '4');
    assert.equal(startupShadow({ shadow: null }, '3'), null);
  });
});

async function setup(dir: string, opts: { pinned?: boolean; envVersion?: string } = {}) {
  for (const v of ['1', '2', '3', '8', '9']) await mkdir(path.join(dir, NAME, v), { recursive: true });
  const counters = createCounters(Object.values(METRICS));
  const holder = createModelHolder(model('1'), { log: silentLogger });
  const shadow = createShadowScorer({ model: NAME, instance: 't', log: silentLogger, counters });
  let directoryChecks = 0;
  const control = createModelControl({
    modelsDir: dir,
    name: NAME,
    holder,
    shadow,
    log: silentLogger,
    counters,
    pinned: opts.pinned ?? false,
    envVersion: opts.envVersion ?? 'latest',
    checkDirectory: async () => void directoryChecks++,
    load: async (d) => {
      const v = path.basename(d);
      if (v === '9') throw new ModelDirError(d, 'weights truncated');
      // Version 8 loads but overflows on the warm-up prediction.
      return v === '8' ? model(v, 3e38) : model(v);
    },
  });
  return { holder, shadow, control, counters, directoryChecks: () => directoryChecks };
}

describe('model control', () => {
  it('activate swaps through the holder and pins the version; latest hands back to the directory', () =>
    withTmpDir(async (dir) => {
      const { holder, control, counters, directoryChecks } = await setup(dir);
      assert.equal(control.watchEnabled(), true);
      assert.equal(await control.apply(ev('activate', '2')), 'swapped');
      assert.equal(holder.current().metadata.version, '2');
      assert.equal(control.watchEnabled(), false, 'an explicit event beats the directory watch');
      assert.equal(await control.apply(ev('activate', '2')), 'unchanged');
      assert.equal(await control.apply(ev('rollback', '1')), 'swapped');
      assert.equal(holder.current().metadata.version, '1');
      assert.equal(await control.apply(ev('activate', 'latest')), 'unchanged');
      assert.equal(control.watchEnabled(), true);
      assert.equal(directoryChecks(), 1);
      assert.equal(counters.get(METRICS.modelSwaps), 2);
      assert.equal(counters.get(METRICS.modelUpdatesApplied), 4);
      holder.dispose();
    }));

  it('a version that is missing, broken or fails the warm-up is refused; the active model keeps serving', () =>
    withTmpDir(async (dir) => {
      const { holder, control, counters } = await setup(dir);
      assert.equal(await control.apply(ev('activate', '7')), 'refused');
      assert.equal(await control.apply(ev('activate', '9')), 'refused');
      assert.equal(await control.apply(ev('activate', '8')), 'refused');
      assert.equal(holder.current().metadata.version, '1');
      assert.equal(counters.get(METRICS.modelsRefused), 3);
      holder.dispose();
    }));

  it("other models' events are ignored", () =>
    withTmpDir(async (dir) => {
      const { holder, control } = await setup(dir);
      assert.equal(await control.apply(ev('activate', '2', 'other')), 'ignored');
      assert.equal(holder.current().metadata.version, '1');
      holder.dispose();
    }));

  it('a pinned MODEL_VERSION keeps the watch off until an event says latest', () =>
    withTmpDir(async (dir) => {
      const { holder, control } = await setup(dir, { envVersion: '1' });
      assert.equal(control.watchEnabled(), false);
      await control.apply(ev('activate', 'latest'));
      assert.equal(control.watchEnabled(), true);
      holder.dispose();
    }));

  it('a version pinned by the log at start-up keeps the watch off', () =>
    withTmpDir(async (dir) => {
      const { holder, control } = await setup(dir, { pinned: true });
      assert.equal(control.watchEnabled(), false);
      holder.dispose();
    }));

  it('shadow and unshadow; a broken shadow is refused and the previous one keeps serving', () =>
    withTmpDir(async (dir) => {
      const { holder, shadow, control, counters } = await setup(dir);
      assert.equal(await control.apply(ev('shadow', '2')), 'swapped');
      assert.equal(shadow.current()?.metadata.version, '2');
      assert.equal(await control.apply(ev('shadow', '8')), 'refused');
      assert.equal(await control.apply(ev('shadow', '9')), 'refused');
      assert.equal(shadow.current()?.metadata.version, '2');
      assert.equal(holder.current().metadata.version, '1', 'the active model is untouched');
      assert.equal(counters.get(METRICS.modelsRefused), 2);
      assert.equal(await control.apply(ev('unshadow', null)), 'swapped');
      assert.equal(shadow.current(), undefined);
      assert.equal(await control.setShadow('3'), 'swapped');
      assert.equal(shadow.current()?.metadata.version, '3');
      shadow.dispose();
      holder.dispose();
    }));
});
