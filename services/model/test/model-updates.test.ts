import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeModelUpdate,
  ModelUpdateFormatError,
  parseModelUpdate,
  resolveModelUpdates,
  rollbackTarget,
  validateModelUpdate,
  type ModelUpdateAction,
  type ModelUpdateEvent,
} from '../src/model-updates.js';

const ev = (action: ModelUpdateAction, version: string | null, model = 'pitwall-ae', at = 1): ModelUpdateEvent => ({
  schema: 'pitwall.model-update.v1',
  model,
  action,
  version,
  issued_at: at,
  issued_by: 'test',
});

describe('model update events', () => {
  it('round-trips through JSON, keeping an optional reason', () => {
    const e = { ...ev('activate', '2'), reason: 'new training run' };
    assert.deepEqual(parseModelUpdate(encodeModelUpdate(e)), e);
    assert.deepEqual(parseModelUpdate(JSON.stringify(ev('unshadow', null))), ev('unshadow', null));
    // A missing version on unshadow is read as null.
    const { version: _v, ...noVersion } = ev('unshadow', null);
    assert.equal(validateModelUpdate(noVersion).version, null);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', [1], /JSON object/],
    ['wrong schema', { ...ev('activate', '2'), schema: 'pitwall.model-update.v0' }, /schema must be/],
    ['no model', { ...ev('activate', '2'), model: '' }, /model must be/],
    ['unknown action', { ...ev('activate', '2'), action: 'delete' }, /action must be one of/],
    ['activate without version', ev('activate', null), /activate needs a numeric version or "latest"/],
    ['non-numeric version', ev('activate', 'v2'), /numeric version/],
    ['shadow of latest', ev('shadow', 'latest'), /shadow needs a numeric version, got "latest"/],
    ['rollback without version', ev('rollback', null), /rollback needs a numeric version/],
    ['unshadow with version', ev('unshadow', '2'), /unshadow takes no version/],
    ['issued_at not a number', { ...ev('activate', '2'), issued_at: '2026-01-01' }, /issued_at/],
    ['issued_by missing', { ...ev('activate', '2'), issued_by: undefined }, /issued_by/],
    ['reason not a string', { ...ev('activate', '2'), reason: 3 }, /reason/],
  ];
  for (const [name, raw, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => validateModelUpdate(raw),
        (err: unknown) => err instanceof ModelUpdateFormatError && message.test(err.message),
      );
    });
  }

  it('refuses records that are empty or not JSON', () => {
    assert.throws(() => parseModelUpdate(null), /empty record/);
    assert.throws(() => parseModelUpdate(Buffer.alloc(0)), /empty record/);
    assert.throws(() => parseModelUpdate(Buffer.from('{activate')), /not JSON/);
  });
});

describe('resolveModelUpdates: the latest event wins', () => {
  const cases: { name: string; events: ModelUpdateEvent[]; active: string | undefined; shadow: string | null | undefined; history: string[]; rollback: string | undefined }[] = [
    { name: 'empty log', events: [], active: undefined, shadow: undefined, history: [], rollback: undefined },
    { name: 'one activation', events: [ev('activate', '1')], active: '1', shadow: undefined, history: ['1'], rollback: undefined },
    { name: 'two activations', events: [ev('activate', '1'), ev('activate', '2')], active: '2', shadow: undefined, history: ['1', '2'], rollback: '1' },
    {
      name: 'rollback walks back one version at a time',
      events: [ev('activate', '1'), ev('activate', '2'), ev('activate', '3'), ev('rollback', '2')],
      active: '2',
      shadow: undefined,
      history: ['1', '2'],
      rollback: '1',
    },
    {
      name: 'two rollbacks',
      events: [ev('activate', '1'), ev('activate', '2'), ev('activate', '3'), ev('rollback', '2'), ev('rollback', '1')],
      active: '1',
      shadow: undefined,
      history: ['1'],
      rollback: undefined,
    },
    { name: 're-activating the same version adds no history', events: [ev('activate', '1'), ev('activate', '1')], active: '1', shadow: undefined, history: ['1'], rollback: undefined },
    {
      name: '"latest" hands over to the directory; rollback returns to the last pinned version',
      events: [ev('activate', '1'), ev('activate', '2'), ev('activate', 'latest')],
      active: 'latest',
      shadow: undefined,
      history: ['1', '2'],
      rollback: '2',
    },
    {
      name: 'rollback from "latest" keeps the history',
      events: [ev('activate', '1'), ev('activate', '2'), ev('activate', 'latest'), ev('rollback', '2')],
      active: '2',
      shadow: undefined,
      history: ['1', '2'],
      rollback: '1',
    },
    { name: 'shadow then unshadow', events: [ev('shadow', '3'), ev('unshadow', null)], active: undefined, shadow: null, history: [], rollback: undefined },
    { name: 'the latest shadow wins', events: [ev('shadow', '3'), ev('activate', '1'), ev('shadow', '4')], active: '1', shadow: '4', history: ['1'], rollback: undefined },
    {
      name: "other models' events are ignored",
      events: [ev('activate', '1'), ev('activate', '9', 'other'), ev('shadow', '8', 'other')],
      active: '1',
      shadow: undefined,
      history: ['1'],
      rollback: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = resolveModelUpdates(c.events, 'pitwall-ae');
      assert.equal(s.active, c.active);
      assert.equal(s.shadow, c.shadow);
      assert.deepEqual(s.history, c.history);
      assert.equal(rollbackTarget(s), c.rollback);
      assert.deepEqual(s.last, c.events.filter((e) => e.model === 'pitwall-ae').at(-1));
    });
  }
});
