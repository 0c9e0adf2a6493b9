/**
 * SCORING_INPUT=readings: a deployment consuming vehicle.telemetry scores each reading with the one
 * served model, which declares a reading input (model-input.ts in @pitwall/model). The chunk scorer
 * on real telemetry records (the telemetry schema, idle markers, bad records), the config and the
 * holder refusing a model of the other input kind.
 */
import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, createAvroCodec, createCounters, defaultSchemasDir, loadSchemaFile, SENSOR_NAMES, silentLogger } from '@pitwall/common';
import { validateMetadata, type AlertRecord, type LoadedModel, type ScoreRecord } from '@pitwall/model';
import { linearModel, metadataFor } from '@pitwall/model/testing';
import { createChunkScorer } from '../src/chunk.js';
import { readScoringConfig } from '../src/config.js';
import { COUNTERS, METRICS } from '../src/metrics.js';
import { createModelHolder } from '../src/model-holder.js';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

/** A reading model of two sensors, min-max over [0, 100] to [-1, 1], predicting 0 (the middle). */
function readingModel(threshold = 0.5): LoadedModel {
  const raw: Record<string, unknown> = {
    ...metadataFor({ name: 'reading-ae', threshold }),
    input: { kind: 'reading', sensors: ['coolant_temp', 'speed'], scaling: { method: 'minmax', min: [0, 0], max: [100, 100], range: [-1, 1] } },
  };
  delete raw.features;
  delete raw.normalization;
  return { model: linearModel(0, 0, 2), metadata: validateMetadata('/models/reading-ae/1', raw), dir: '/models/reading-ae/1' };
}

describe('scoring readings (SCORING_INPUT=readings)', () => {
  it('scores every reading on its own, names its time as the window, passes idle markers over', async () => {
    const schemas = await Promise.all([loadSchemaFile(defaultSchemasDir(), 'telemetry', 2), loadSchemaFile(defaultSchemasDir(), 'alert', 1), loadSchemaFile(defaultSchemasDir(), 'score', 1)]);
    const store = (i: number) => ({ setCompatibility: async () => {}, register: async () => i + 1, lookup: async () => i + 1, getSchema: async () => schemas[i]! });
    const telemetry = await createAvroCodec<Record<string, unknown>>(store(0), 't-value', schemas[0]);
    const alerts = await createAvroCodec<AlertRecord>(store(1), 'a-value', schemas[1]);
    const scores = await createAvroCodec<ScoreRecord>(store(2), 's-value', schemas[2]);
    const counters = createCounters(COUNTERS);
    const scorer = createChunkScorer({
      featuresCodec: telemetry as never,
      alertsCodec: alerts,
      scoresCodec: scores,
      source: { current: () => readingModel() },
      featuresTopic: 'vehicle.telemetry',
      input: 'readings',
      counters,
      log: silentLogger,
      now: () => 5,
    });
    const reading = (car: string, ts: number, coolant: number, speed: number): Buffer =>
      telemetry.encode({ vehicle_id: car, ts, ...Object.fromEntries(SENSOR_NAMES.map((s) => [s, 0])), coolant_temp: coolant, speed, out_of_range: [], received_at: ts, ignition_on: null });
    const msg = (i: number, value: Buffer | null, headers: KafkaMessage['headers'] = {}): KafkaMessage => ({ offset: String(i), key: null, value, timestamp: '0', attributes: 0, headers });
    const out = await scorer(0, [
      msg(0, reading('car1', 1_000, 50, 50)), // scaled (0, 0): perfect, score 0
      msg(1, null, { 'pitwall.control': 'idle', 'pitwall.control.time': '9' }), // windowing's idle marker
      msg(2, reading('car2', 2_000, 100, 50)), // coolant scaled 1: score 1 / 2 = 0.5, not above 0.5
      msg(3, Buffer.from([0, 1, 2])), // not a telemetry record
      msg(4, reading('car1', 11_000, 100, 100)), // (1, 1): score 1 > 0.5: alert, both sensors share it
    ]);
    const s = await Promise.all(out.scores.map((m) => scores.decode(m.value as Buffer)));
    assert.deepEqual(
      s.map((x) => [x.vehicle_id, x.window_start, x.window_end, x.score, x.anomalous, x.model_name]),
      [
        ['car1', 1_000, 1_000, 0, false, 'reading-ae'],
        ['car2', 2_000, 2_000, 0.5, false, 'reading-ae'],
        ['car1', 11_000, 11_000, 1, true, 'reading-ae'],
      ],
    );
    assert.deepEqual(
      s[1]!.contributors.map((c) => [c.sensor, c.share]),
      [['coolant_temp', 1]],
    );
    const a = await Promise.all(out.alerts.map((m) => alerts.decode(m.value as Buffer)));
    assert.deepEqual(
      a.map((x) => [x.vehicle_id, x.window_start, x.contributors.map((c) => c.sensor)]),
      [['car1', 11_000, ['coolant_temp', 'speed']]],
    );
    assert.equal(out.deadLetters.length, 1);
    assert.equal(String(out.deadLetters[0]!.headers!['pitwall.source.offset']), '3');
    assert.equal(out.scored, 3);
    assert.equal(counters.snapshot()[METRICS.windowsPartial] ?? 0, 0, 'a reading is never a partial window');
  });

  it('config: SCORING_INPUT reads vehicle.telemetry with a group of its own and serves one model', () => {
    const c = readScoringConfig({ SCORING_INPUT: 'readings', MODEL_NAME: 'reading-ae' });
    assert.deepEqual([c.input, c.sourceTopic, c.groupId], ['readings', 'vehicle.telemetry', 'pitwall-scoring-readings']);
    const w = readScoringConfig({});
    assert.deepEqual([w.input, w.sourceTopic, w.groupId], ['windows', 'vehicle.features', 'pitwall-scoring']);
    assert.throws(
      () => readScoringConfig({ SCORING_INPUT: 'rows' }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('SCORING_INPUT'),
    );
    assert.throws(
      () => readScoringConfig({ SCORING_INPUT: 'readings', MODEL_NAME: 'a,b' }),
      (err: unknown) => err instanceof ConfigError && /MODEL_NAME.*SCORING_INPUT=readings serves one model/.test(err.message),
    );
  });

  it('a version of the other input kind is refused; the served one keeps serving', () => {
    const windows = createModelHolder({ model: linearModel(1, 0), metadata: metadataFor(), dir: '/m/pitwall-ae/1' }, { log: silentLogger });
    const offered = windows.offer(readingModel());
    assert.equal(offered.accepted, false);
    assert.match((offered as { reason: string }).reason, /declares a reading input, the served version a window input/);
    assert.equal(windows.current().metadata.name, 'test-ae');
    const readings = createModelHolder(readingModel(), { log: silentLogger });
    assert.match(readings.validate({ model: linearModel(1, 0), metadata: metadataFor(), dir: '/m/x/1' })!, /declares a window input, the served version a reading input/);
    assert.equal(readings.validate(readingModel(0.7)), undefined, 'another version of the same inputs is accepted');
    windows.dispose();
    readings.dispose();
  });
});
