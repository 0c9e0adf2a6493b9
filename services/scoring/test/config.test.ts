import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '@pitwall/common';
import { defaultModelsDir } from '@pitwall/model';
import { readScoringConfig } from '../src/config.js';

describe('readScoringConfig', () => {
  it('defaults', () => {
    const c = readScoringConfig({});
    assert.equal(c.service, 'scoring');
    assert.deepEqual(c.model, { dir: defaultModelsDir(), name: 'pitwall-ae', names: ['pitwall-ae'], version: 'latest' });
    assert.equal(c.tfjsBackend, undefined);
    assert.equal(c.groupId, 'pitwall-scoring');
    assert.equal(c.healthPort, 9103);
    assert.equal(c.partitions, 3);
    assert.equal(c.batchSize, 500);
    assert.equal(c.fromBeginning, true);
    assert.equal(c.topics.features, 'vehicle.features');
    assert.equal(c.topics.alerts, 'maintenance.alerts');
    assert.equal(c.featuresDlqTopic, 'vehicle.features.dlq');
    assert.deepEqual(c.drift, { enabled: true, periodMs: 900_000, vehicleWindows: 120, maxVehicles: 2_000, reportMs: 60_000 });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.model));
  });

  it('drift settings, and their refusals naming the variable', () => {
    const c = readScoringConfig({ SCORING_DRIFT: 'false', SCORING_DRIFT_PERIOD_S: '60', SCORING_DRIFT_VEHICLE_WINDOWS: '30', SCORING_DRIFT_MAX_VEHICLES: '0', SCORING_DRIFT_REPORT_MS: '1000' });
    assert.deepEqual(c.drift, { enabled: false, periodMs: 60_000, vehicleWindows: 30, maxVehicles: 0, reportMs: 1000 });
    assert.throws(() => readScoringConfig({ SCORING_DRIFT_PERIOD_S: '5' }), /SCORING_DRIFT_PERIOD_S/);
    assert.throws(() => readScoringConfig({ SCORING_DRIFT_VEHICLE_WINDOWS: 'many' }), /SCORING_DRIFT_VEHICLE_WINDOWS/);
  });

  it('the default models directory is the repository models/ folder', () => {
    assert.equal(path.basename(defaultModelsDir()), 'models');
    assert.ok(existsSync(path.join(defaultModelsDir(), '..', 'schemas', 'alert', 'v1.avsc')), defaultModelsDir());
  });

  it('reads overrides', () => {
    const c = readScoringConfig({
      MODEL_DIR: '/srv/models',
      MODEL_NAME: 'other',
      MODEL_VERSION: '12',
      TFJS_BACKEND: 'cpu',
      SCORING_GROUP_ID: 'g2',
      HEALTH_PORT: '0',
      TOPIC_PARTITIONS: '6',
      SCORING_BATCH_SIZE: '64',
      SCORING_FROM_BEGINNING: 'false',
    });
    assert.deepEqual(c.model, { dir: '/srv/models', name: 'other', names: ['other'], version: '12' });
    assert.equal(c.tfjsBackend, 'cpu');
    assert.equal(c.groupId, 'g2');
    assert.equal(c.healthPort, 0);
    assert.equal(c.partitions, 6);
    assert.equal(c.batchSize, 64);
    assert.equal(c.fromBeginning, false);
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ TFJS_BACKEND: 'gpu' }, /^TFJS_BACKEND: expected one of auto, tensorflow, wasm, cpu, got "gpu"$/],
    [{ MODEL_VERSION: 'v1' }, /^MODEL_VERSION: expected an integer, got "v1"$/],
    [{ HEALTH_PORT: '70000' }, /^HEALTH_PORT: must be <= 65535/],
    [{ SCORING_BATCH_SIZE: '0' }, /^SCORING_BATCH_SIZE: must be >= 1/],
  ];
  for (const [env, message] of bad) {
    it(`refuses ${JSON.stringify(env)}, naming the variable`, () => {
      assert.throws(
        () => readScoringConfig(env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, message);
          assert.equal(err.variable, Object.keys(env)[0]);
          return true;
        },
      );
    });
  }

  it('reports every bad variable at once', () => {
    assert.throws(
      () => readScoringConfig({ TFJS_BACKEND: 'gpu', TOPIC_PARTITIONS: 'x' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.variable, 'TFJS_BACKEND, TOPIC_PARTITIONS');
        return true;
      },
    );
  });

  it('MODEL_NAME lists the served models; the first is the one MODEL_VERSION and the shadow apply to', () => {
    const c = readScoringConfig({ MODEL_NAME: 'pitwall-ae, cardata-ae' });
    assert.equal(c.model.name, 'pitwall-ae');
    assert.deepEqual(c.model.names, ['pitwall-ae', 'cardata-ae']);
    for (const bad of ['pitwall-ae,pitwall-ae', 'pitwall-ae,../x']) {
      assert.throws(
        () => readScoringConfig({ MODEL_NAME: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.includes('MODEL_NAME'),
        bad,
      );
    }
  });
});
