import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { computeFeatures, FEATURE_NAMES, featureFields, SENSOR_NAMES } from '@pitwall/common';
import { alertJsonLine, formatAlertTable, replayAlerts, scoreVectors, SCORE_CHUNK, type FeatureRecordLike, type ReplayInput } from '../src/replay.js';
import { buildAlert, scoreBatch, WARMUP_MOVING } from '@pitwall/model';
import { linearModel, metadataFor, vectorWith } from '@pitwall/model/testing';

before(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

const record = (vehicle: string, start: number, events: number, values: Record<string, number>): FeatureRecordLike => ({
  vehicle_id: vehicle,
  window_start: start,
  window_end: start + 10_000,
  event_count: events,
  ...featureFields(vectorWith(values)),
});

describe('replayAlerts', () => {
  // Model predicts 0, identity normalization: score = mean of squared raw features; threshold 1.
  const meta = metadataFor({ threshold: 1 });
  const inputs: ReplayInput[] = [
    { partition: 0, offset: '5', record: record('a', 0, 10, { coolant_temp: 100 }) },
    { partition: 0, offset: '6', record: record('a', 10_000, 10, { coolant_temp: 0.1 }) },
    { partition: 0, offset: '7', record: record('a', 20_000, 3, { coolant_temp: 100 }) },
    { partition: 1, offset: '2', record: record('b', 0, 8, { speed: 50, coolant_temp: 20 }) },
    { partition: 1, offset: '3', record: { vehicle_id: 'b', window_start: 10_000, window_end: 20_000, event_count: 10 } },
    { partition: 1, offset: '4', record: record('b', 20_000, 10, { speed: Number.NaN }) },
  ];

  it('alerts like the scoring service: coverage, validity, score > threshold, created_at = window_end', () => {
    const model = linearModel(0, 0);
    const r = replayAlerts(model, meta, inputs);
    assert.equal(r.scored, 3);
    assert.equal(r.partial, 1);
    assert.deepEqual(
      r.invalid.map((i) => `${i.partition}:${i.offset}`),
      ['1:3', '1:4'],
    );
    assert.match(r.invalid[0]!.reason, /missing/);
    assert.match(r.invalid[1]!.reason, /speed_mean is NaN/);
    assert.deepEqual(
      r.alerts.map((a) => `${a.source.partition}:${a.source.offset}`),
      ['0:5', '1:2'],
    );
    const [s] = scoreBatch(model, meta, [vectorWith({ coolant_temp: 100 })]);
    assert.deepEqual(r.alerts[0]!.alert, buildAlert(inputs[0]!.record, s!, meta, 10_000));
    assert.equal(r.alerts[1]!.alert.contributors[0]!.sensor, 'speed');
    assert.equal(replayAlerts(model, meta, inputs, { minCoverage: 0.2 }).scored, 4);
    model.dispose();
  });

  it("scores only windows of the model's size, as scoring routes them", () => {
    const model = linearModel(0, 0);
    const other = { ...record('c', 0, 100, { coolant_temp: 100 }), window_end: 60_000, window_size_ms: 60_000 };
    const named = { ...record('c', 0, 10, { coolant_temp: 100 }), window_size_ms: 10_000 };
    const r = replayAlerts(model, meta, [
      { partition: 2, offset: '0', record: other },
      { partition: 2, offset: '1', record: named },
    ]);
    model.dispose();
    assert.equal(r.otherWindows, 1);
    assert.equal(r.scored, 1);
    assert.deepEqual(
      r.alerts.map((a) => a.source.offset),
      ['1'],
    );
  });

  it("lists the stuck-sensor detector's alerts, as scoring raises them, below the threshold", () => {
    // Coolant moves for WARMUP_MOVING windows, then reads exactly 90 °C: the third flat window alerts.
    const windowOf = (k: number, flat: boolean): FeatureRecordLike => {
      const events = Array.from({ length: 10 }, (_, j) => ({
        ts: k * 10_000 + j * 1000,
        values: SENSOR_NAMES.map((name) => (name === 'coolant_temp' ? (flat ? 90 : 85 + ((j + k) % 5)) : 1)),
      }));
      return { vehicle_id: 'd', window_start: k * 10_000, window_end: (k + 1) * 10_000, event_count: 10, ...featureFields(computeFeatures(events)) };
    };
    const windows = [...Array.from({ length: WARMUP_MOVING }, (_, k) => windowOf(k, false)), ...[0, 1, 2, 3].map((i) => windowOf(WARMUP_MOVING + i, true))];
    const model = linearModel(0, 0);
    const quiet = metadataFor({ threshold: 1e12 });
    const r = replayAlerts(
      model,
      quiet,
      windows.map((w, i) => ({ partition: 0, offset: String(i), record: w })),
    );
    model.dispose();
    assert.equal(r.scored, windows.length);
    assert.equal(r.stuck, 2);
    assert.deepEqual(
      r.alerts.map((a) => Number(a.source.offset)),
      [WARMUP_MOVING + 2, WARMUP_MOVING + 3],
    );
    const top = r.alerts[0]!.alert.contributors[0]!;
    assert.equal(top.sensor, 'coolant_temp');
    assert.match(top.action, /^Stuck: reads exactly 90 °C/);
    assert.ok(r.alerts[0]!.alert.score < quiet.threshold);
  });

  it('gives the same output twice', () => {
    const model = linearModel(0.5, 0.1);
    const a = replayAlerts(model, meta, inputs).alerts.map(alertJsonLine);
    const b = replayAlerts(model, meta, inputs).alerts.map(alertJsonLine);
    model.dispose();
    assert.deepEqual(a, b);
    const parsed = JSON.parse(a[0]!);
    assert.deepEqual(parsed.source, { partition: 0, offset: '5' });
    assert.equal(parsed.created_at, parsed.window_end);
  });

  it('formats a table with one row per alert', () => {
    const model = linearModel(0, 0);
    const table = formatAlertTable(replayAlerts(model, meta, inputs).alerts);
    model.dispose();
    const lines = table.split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, /^a\s+1970-01-01T00:00:00.000Z\s+.*coolant_temp\s+100%\s+0:5 /);
  });
});

describe('scoreVectors', () => {
  it('scores more rows than one chunk exactly like scoreBatch does', () => {
    const model = linearModel(0.3, 0.2);
    const meta = metadataFor();
    const vectors = Array.from({ length: SCORE_CHUNK + 5 }, (_, i) => Float32Array.from(FEATURE_NAMES, (_, j) => ((i * 7 + j) % 13) - 6));
    const chunked = scoreVectors(model, meta, vectors);
    assert.equal(chunked.length, vectors.length);
    assert.deepEqual(chunked.slice(SCORE_CHUNK), scoreBatch(model, meta, vectors.slice(SCORE_CHUNK)));
    assert.deepEqual(scoreVectors(model, meta, []), []);
    model.dispose();
  });
});
