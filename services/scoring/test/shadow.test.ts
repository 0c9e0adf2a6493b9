import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createCounters, silentLogger } from '@pitwall/common';
import type { LoadedModel } from '@pitwall/model';
import { labelled, METRICS } from '../src/metrics.js';
import { createShadowScorer } from '../src/shadow.js';
import { linearModel, metadataFor, vectorWith } from '@pitwall/model/testing';

before(async () => {
  await tf.setBackend('cpu');
});

// Predicts 0 with mean 0 / std 1: score = mean of squared raw features (coolant 4 -> 96/108).
const zeroModel = (version: string, threshold: number): LoadedModel => ({ model: linearModel(0, 0), metadata: metadataFor({ version, threshold }), dir: `/m/${version}` });
const ok = (): undefined => undefined;

describe('shadow scorer', () => {
  it('pairs its decisions (its own threshold) with the active ones and counts them once recorded', () => {
    const counters = createCounters();
    let t = 1000;
    const s = createShadowScorer({ model: 'pitwall-ae', instance: 'r1', log: silentLogger, counters, now: () => t });
    assert.equal(s.observe({ version: '1' }, [true], [vectorWith({})]), undefined, 'no shadow: nothing');
    assert.deepEqual(s.offer(zeroModel('2', 0.5), ok), { accepted: true });
    // Shadow scores 0, 96/108, 6/108, 96/108 against its threshold 0.5: alerts on windows 1 and 3.
    const vectors = [vectorWith({}), vectorWith({ coolant_temp: 4 }), vectorWith({ speed: 1 }), vectorWith({ coolant_temp: 4 })];
    const tally = s.observe({ version: '1' }, [false, false, true, true], vectors)!;
    assert.deepEqual(tally, { active: '1', shadow: '2', counts: { both: 1, active_only: 1, shadow_only: 1, neither: 1 } });
    assert.deepEqual(s.takeReports(t), [], 'nothing recorded yet');
    s.record(tally);
    s.record(tally);
    assert.equal(counters.get(labelled(METRICS.shadowWindows, { role: 'shadow', version: '2' })), 8);
    assert.equal(counters.get(labelled(METRICS.shadowAlerts, { role: 'shadow', version: '2' })), 4);
    assert.equal(counters.get(labelled(METRICS.shadowAlerts, { role: 'active', version: '1' })), 4);
    assert.equal(counters.get(labelled(METRICS.shadowAgreement, { outcome: 'neither' })), 2);
    t = 2000;
    const [report, ...more] = s.takeReports(t);
    assert.deepEqual(more, []);
    assert.deepEqual(report!.agreement, { both: 2, active_only: 2, shadow_only: 2, neither: 2, ratio: 0.5 });
    assert.deepEqual(report!.shadow, { version: '2', windows: 8, alerts: 4, alert_rate: 0.5 });
    assert.equal(report!.instance, 'r1');
    assert.equal(report!.to, 2000);
    t = 3000;
    const [idle] = s.takeReports(t);
    assert.deepEqual([idle!.from, idle!.to, idle!.active.windows], [2000, 3000, 0], 'a configured shadow reports even without windows');
    s.clear();
    assert.deepEqual(s.takeReports(4000), []);
    s.dispose();
  });

  it('a refused candidate is disposed and the previous shadow keeps serving', () => {
    const s = createShadowScorer({ model: 'm', instance: 'r', log: silentLogger, counters: createCounters() });
    s.offer(zeroModel('2', 1), ok);
    const bad = zeroModel('3', 1);
    assert.deepEqual(
      s.offer(bad, () => 'warm-up failed'),
      { accepted: false, reason: 'warm-up failed' },
    );
    assert.equal(s.current()?.metadata.version, '2');
    assert.throws(() => bad.model.predict(tf.zeros([1, bad.metadata.features.length])), /disposed/);
    s.dispose();
  });

  it('a shadow prediction that fails is counted and never throws', () => {
    const counters = createCounters();
    const s = createShadowScorer({ model: 'm', instance: 'r', log: silentLogger, counters });
    // Finite weights, but the squared error overflows: a non-finite score.
    s.offer({ model: linearModel(1, 3e38), metadata: metadataFor({ version: '5' }), dir: '/m/5' }, ok);
    assert.equal(s.observe({ version: '1' }, [false], [vectorWith({ coolant_temp: 3 })]), undefined);
    assert.equal(s.observe({ version: '1' }, [false, true], [vectorWith({})]), undefined, 'mismatched lengths are a failure too');
    assert.equal(counters.get(METRICS.shadowFailures), 2);
    s.dispose();
  });
});
