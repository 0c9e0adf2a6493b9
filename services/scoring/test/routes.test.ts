/**
 * Routing windows to the served model declaring their size: the pure rule (routes.ts), the chunk
 * scorer applying it to mixed chunks (v1 and v2 records, sizes with and without a model), the
 * unrouted-window notice and the holder refusing a version that changes its window.
 */
import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import * as tf from '@tensorflow/tfjs';
import { createAvroCodec, createCounters, defaultSchemasDir, featureFields, loadSchemaFile, silentLogger, type Logger } from '@pitwall/common';
import type { AlertRecord, LoadedModel, ModelMetadata, ScoreRecord } from '@pitwall/model';
import { linearModel, metadataFor, vectorWith } from '@pitwall/model/testing';
import { createChunkScorer, type FeatureRecord } from '../src/chunk.js';
import { COUNTERS, labelled, METRICS } from '../src/metrics.js';
import { createModelHolder } from '../src/model-holder.js';
import { clashingWindows, routeTable, windowSizeOf } from '../src/routes.js';
import { createUnroutedNotice } from '../src/sparse-windows.js';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const TWO_MIN: ModelMetadata['window'] = { sizeMs: 120_000, rateHz: 0.1, minReadings: 10, minCoverage: 0.8 };

describe('routes', () => {
  it('windowSizeOf: the named definition, else end - start', () => {
    const table: Array<[{ window_start: number; window_end: number; window_size_ms?: number | null }, number]> = [
      [{ window_start: 0, window_end: 10_000 }, 10_000],
      [{ window_start: 0, window_end: 10_000, window_size_ms: null }, 10_000],
      [{ window_start: 120_000, window_end: 240_000, window_size_ms: 120_000 }, 120_000],
    ];
    for (const [record, want] of table) assert.equal(windowSizeOf(record), want, JSON.stringify(record));
  });

  it('routeTable maps each declared size to its model; clashingWindows names models sharing one', () => {
    const a = metadataFor({ name: 'pitwall-ae' });
    const b = metadataFor({ name: 'cardata-ae', window: TWO_MIN });
    const c = metadataFor({ name: 'other-ae', version: '4' });
    assert.deepEqual(
      [...routeTable([a, b])],
      [
        [10_000, 0],
        [120_000, 1],
      ],
    );
    assert.deepEqual(clashingWindows([a, b]), []);
    assert.deepEqual(clashingWindows([a, b, c]), ['other-ae@4 and pitwall-ae@1 both declare 10000 ms windows']);
  });
});

describe('chunk scorer with two served models', () => {
  const codecs = async () => {
    const schemas = await Promise.all([loadSchemaFile(defaultSchemasDir(), 'features', 2), loadSchemaFile(defaultSchemasDir(), 'alert', 1), loadSchemaFile(defaultSchemasDir(), 'score', 1)]);
    const store = (i: number) => ({ setCompatibility: async () => {}, register: async () => i + 1, lookup: async () => i + 1, getSchema: async () => schemas[i]! });
    return {
      features: await createAvroCodec<FeatureRecord>(store(0), 'f-value', schemas[0]),
      alerts: await createAvroCodec<AlertRecord>(store(1), 'a-value', schemas[1]),
      scores: await createAvroCodec<ScoreRecord>(store(2), 's-value', schemas[2]),
    };
  };
  const loaded = (metadata: ModelMetadata): LoadedModel => ({ model: linearModel(0, 0), metadata, dir: `/models/${metadata.name}/1` });

  it('scores each window with the model declaring its size, in source order; counts partial and unrouted windows', async () => {
    const c = await codecs();
    const counters = createCounters(COUNTERS);
    const warnings: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    const log = { ...silentLogger, warn: (msg: string, fields?: Record<string, unknown>) => void warnings.push({ msg, fields: fields ?? {} }) } as Logger;
    const scorer = createChunkScorer({
      featuresCodec: c.features,
      alertsCodec: c.alerts,
      scoresCodec: c.scores,
      source: { current: () => loaded(metadataFor({ name: 'pitwall-ae' })) },
      routes: [{ current: () => loaded(metadataFor({ name: 'cardata-ae', window: TWO_MIN, threshold: 0.5 })) }],
      featuresTopic: 'f',
      counters,
      log,
      now: () => 1_000,
    });
    const rec = (vehicle: string, start: number, size: number, events: number, named: boolean, values: Record<string, number> = {}): Buffer =>
      c.features.encode({
        vehicle_id: vehicle,
        window_start: start,
        window_end: start + size,
        event_count: events,
        ...featureFields(vectorWith(values)),
        window_size_ms: named ? size : null,
        window_advance_ms: named ? size : null,
      });
    const messages = [
      rec('car1', 0, 10_000, 1, true), // 10 s window of a 10 s fleet: partial for pitwall-ae
      rec('car1', 0, 120_000, 12, true, { coolant_temp: 1 }), // cardata-ae: score 6 x 1 / 108, below its threshold 0.5
      rec('car2', 0, 10_000, 10, false), // v1-style record, 10 s: scored by pitwall-ae
      rec('car2', 0, 60_000, 6, true), // no model declares 60 s: unrouted
      rec('car3', 0, 120_000, 9, true), // below cardata-ae's minReadings (10): partial
      rec('car3', 120_000, 120_000, 10, false, { speed: 2 }), // v1-style, end - start = 120 s: cardata-ae, score 6 x 4 / 108
      rec('car4', 0, 120_000, 11, true, { speed: 4 }), // cardata-ae: score 6 x 16 / 108 = 0.89 > 0.5: alert
    ].map((value, i): KafkaMessage => ({ offset: String(i), key: null, value, timestamp: '0', attributes: 0, headers: {} }));
    const out = await scorer(0, messages);
    const scores = await Promise.all(out.scores.map((m) => c.scores.decode(m.value as Buffer)));
    assert.deepEqual(
      scores.map((s) => [s.vehicle_id, s.window_end - s.window_start, s.model_name]),
      [
        ['car1', 120_000, 'cardata-ae'],
        ['car2', 10_000, 'pitwall-ae'],
        ['car3', 120_000, 'cardata-ae'],
        ['car4', 120_000, 'cardata-ae'],
      ],
    );
    assert.equal(out.scored, 4);
    const alerts = await Promise.all(out.alerts.map((m) => c.alerts.decode(m.value as Buffer)));
    assert.deepEqual(
      alerts.map((a) => a.vehicle_id),
      ['car4'],
    );
    const snap = counters.snapshot();
    assert.equal(snap[METRICS.windowsPartial], 2);
    assert.equal(snap[labelled(METRICS.windowsUnrouted, { window_ms: '60000' })], 1);
    const notice = warnings.find((w) => /no served model declares/.test(w.msg));
    assert.deepEqual(notice?.fields.windows, { '60000': 1 });
    assert.deepEqual(notice?.fields.servedWindowsMs, [10_000, 120_000]);
  });
});

describe('unrouted notice', () => {
  it('warns at the first unrouted window, then at most once a period, with the counts since', () => {
    const lines: Array<Record<string, unknown>> = [];
    let t = 0;
    const notice = createUnroutedNotice({ warn: (_msg: string, fields?: Record<string, unknown>) => void lines.push(fields ?? {}) }, () => t, 60_000);
    const table: Array<{ at: number; sizes: number[]; logged?: Record<string, number> }> = [
      { at: 0, sizes: [], logged: undefined },
      { at: 1_000, sizes: [60_000, 60_000], logged: { '60000': 2 } },
      { at: 30_000, sizes: [60_000, 5_000] },
      { at: 59_000, sizes: [] },
      { at: 61_000, sizes: [60_000], logged: { '5000': 1, '60000': 2 } },
      { at: 200_000, sizes: [] },
    ];
    for (const step of table) {
      t = step.at;
      const before = lines.length;
      notice.observe(step.sizes, [10_000]);
      if (step.logged) assert.deepEqual(lines.at(-1)?.windows, step.logged, `at ${step.at}`);
      else assert.equal(lines.length, before, `nothing logged at ${step.at}`);
    }
  });
});

describe('model holder and windows', () => {
  it('refuses a version declaring another window size than the one it would replace', () => {
    const holder = createModelHolder({ model: linearModel(0, 0), metadata: metadataFor(), dir: '/m/1' }, { log: silentLogger });
    const other = { model: linearModel(0, 0), metadata: metadataFor({ version: '2', window: TWO_MIN }), dir: '/m/2' };
    assert.match(holder.validate(other) ?? '', /declares 120000 ms windows, the served version 10000 ms/);
    const offer = holder.offer(other);
    assert.equal(offer.accepted, false);
    assert.equal(holder.current().metadata.version, '1');
    holder.dispose();
  });
});
