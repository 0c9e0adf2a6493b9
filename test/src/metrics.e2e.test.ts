/**
 * GET /metrics of ingest and windowing, running as real processes on the real brokers: a few
 * hundred readings of cars unique to the run go over the shared Mosquitto, and the counters,
 * histograms, lag gauges, readiness gauges and process metrics show exactly what happened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectMqtt, SENSORS, silentLogger } from '@pitwall/common';
import { scrape, type Scrape } from './support/prometheus.js';
import { INFRA, isolatedEnv, runId, startService, waitFor, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

const VEHICLES = 5;
const READINGS = 60; // per vehicle, 1 Hz of event time: windows 0..4 close, window 5 stays open
const BAD = 3;

test('/metrics of ingest and windowing follow a few hundred readings', { timeout: 240_000 }, async (t) => {
  const id = runId();
  // No idle closes: the last window of every car stays open, so what is emitted is exact.
  const env: Record<string, string> = { ...isolatedEnv(id), INGEST_LINGER_MS: '20', WINDOWING_IDLE_MS: '0', WINDOWING_VEHICLE_IDLE_MS: '0' };
  const ingest = await startService('ingest', env, `metrics-${id}`);
  const windowing = await startService('windowing', env, `metrics-${id}`);
  t.after(async () => {
    await ingest.stop();
    await windowing.stop();
  });
  await waitReady([ingest, windowing]);

  const ingest0 = await scrape(ingest.healthPort);
  const windowing0 = await scrape(windowing.healthPort);
  const delta = (before: Scrape, after: Scrape, name: string, labels?: Record<string, string>): number => after.sum(name, labels) - before.sum(name, labels);

  // Event time in the past, on 10 s boundaries: every reading is at least 30 s old when acknowledged.
  const t0 = Math.floor((Date.now() - 90_000) / 10_000) * 10_000;
  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-metrics-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  try {
    for (let i = 0; i < READINGS; i++) {
      await Promise.all(
        Array.from({ length: VEHICLES }, (_, v) => {
          const reading: Record<string, number> = { ts: t0 + i * 1000 };
          for (const s of SENSORS) reading[s.name] = s.kind === 'int' ? 230 : 10 + v + i / 100;
          // Resolves at the PUBACK, which ingest sends once Kafka has the record.
          return publisher.publishAsync(`vehicles/m${id}-${v}/telemetry`, JSON.stringify(reading), { qos: 1 });
        }),
      );
    }
    for (let i = 0; i < BAD; i++) await publisher.publishAsync(`vehicles/m${id}-bad/telemetry`, 'not json', { qos: 1 });
  } finally {
    await publisher.endAsync();
  }
  const readings = VEHICLES * READINGS;

  // ingest: every message received and produced, dead letters by reason, and one event-time-to-ack
  // observation per reading (none for dead letters).
  const ingest1 = await waitFor(
    'ingest to count every message',
    async () => {
      const s = await scrape(ingest.healthPort);
      return delta(ingest0, s, 'pitwall_ingest_records_produced_total') >= readings + BAD ? s : undefined;
    },
    30_000,
  );
  const ack = 'pitwall_ingest_event_to_ack_seconds';
  t.diagnostic(`ingest: ${delta(ingest0, ingest1, `${ack}_sum`) / readings} s from event time to acknowledgement on average`);
  assert.equal(delta(ingest0, ingest1, 'pitwall_ingest_messages_received_total'), readings + BAD);
  assert.equal(delta(ingest0, ingest1, 'pitwall_ingest_records_produced_total'), readings + BAD);
  assert.equal(delta(ingest0, ingest1, 'pitwall_ingest_dead_lettered_total', { reason: 'payload.not_json' }), BAD);
  assert.equal(delta(ingest0, ingest1, `${ack}_count`), readings);
  assert.equal(delta(ingest0, ingest1, `${ack}_bucket`, { le: '+Inf' }), readings);
  assert.equal(delta(ingest0, ingest1, `${ack}_bucket`, { le: '20' }), 0, 'every reading was more than 20 s old');
  assert.ok(delta(ingest0, ingest1, `${ack}_sum`) >= readings * 30, 'at least 30 s each');
  // One observation per Kafka batch: every record produced is in exactly one batch.
  const batches = delta(ingest0, ingest1, 'pitwall_ingest_kafka_batch_records_count');
  t.diagnostic(`ingest: ${batches} Kafka batches, ${delta(ingest0, ingest1, 'pitwall_ingest_kafka_batch_seconds_sum') / Math.max(1, batches)} s each on average`);
  assert.ok(batches >= 1);
  assert.equal(delta(ingest0, ingest1, 'pitwall_ingest_kafka_batch_records_sum'), readings + BAD);
  assert.equal(delta(ingest0, ingest1, 'pitwall_ingest_kafka_batch_seconds_count'), batches);
  assert.equal(ingest1.sum('pitwall_ready'), 1);
  assert.equal(ingest1.sum('pitwall_readiness_check', { check: 'kafka' }), 1);
  assert.equal(ingest1.sum('pitwall_readiness_check', { check: 'mqtt.subscription' }), 1);

  // windowing: every reading consumed; the 5 closed windows of each car emitted, one
  // window-end-to-emission observation each (at least the 2 s grace).
  const closed = VEHICLES * 5;
  const emitted = 'pitwall_windowing_windows_emitted_total';
  const windowing1 = await waitFor(
    'windowing to emit the closed windows',
    async () => {
      const s = await scrape(windowing.healthPort);
      return delta(windowing0, s, emitted) >= closed && delta(windowing0, s, 'pitwall_windowing_events_consumed_total') >= readings ? s : undefined;
    },
    60_000,
  );
  const emit = 'pitwall_windowing_window_end_to_emit_seconds';
  t.diagnostic(`windowing: ${delta(windowing0, windowing1, `${emit}_sum`) / closed} s from window end to emission on average`);
  // At least: a transaction aborted (a transient broker error) makes windowing read its batch
  // again, and the consumed counter counts reads, not committed records.
  assert.ok(delta(windowing0, windowing1, 'pitwall_windowing_events_consumed_total') >= readings);
  assert.ok(delta(windowing0, windowing1, 'pitwall_windowing_transactions_committed_total') >= 1, 'batch transactions are counted');
  assert.equal(delta(windowing0, windowing1, emitted), closed);
  assert.equal(delta(windowing0, windowing1, `${emit}_count`), closed);
  assert.ok(delta(windowing0, windowing1, `${emit}_sum`) >= closed * 2, 'at least the grace each');
  assert.equal(windowing1.sum('pitwall_ready'), 1);
  assert.equal(windowing1.sum('pitwall_readiness_check', { check: 'consumer' }), 1);

  // Lag: the consumer has fetched everything (fetch lag 0), while the committed offsets stay at the
  // first offset of each partition's earliest open window: at least the open windows' readings.
  const group = { group: env.WINDOWING_GROUP_ID!, topic: env.TOPIC_TELEMETRY! };
  const open = VEHICLES * (READINGS - 50);
  const lagged = await waitFor(
    'the committed lag gauge to show the open windows',
    async () => {
      const s = await scrape(windowing.healthPort);
      const committed = s.sum('pitwall_consumer_committed_lag_records', group);
      return committed >= open && s.samples.some((x) => x.name === 'pitwall_consumer_fetch_lag_records') ? s : undefined;
    },
    30_000,
  );
  const committedLag = lagged.sum('pitwall_consumer_committed_lag_records', group);
  t.diagnostic(`windowing: committed lag ${committedLag} records (open windows: ${open}), fetch lag ${lagged.sum('pitwall_consumer_fetch_lag_records', group)}`);
  assert.ok(committedLag <= readings, `committed lag ${committedLag}`);
  assert.equal(lagged.sum('pitwall_consumer_fetch_lag_records', group), 0);
  assert.match(lagged.text, /# HELP pitwall_consumer_committed_lag_records .*earliest open window/);

  // prom-client's process metrics, in both.
  for (const s of [ingest1, windowing1]) {
    assert.ok(s.sum('process_cpu_user_seconds_total') > 0);
    assert.ok(s.sum('nodejs_heap_size_used_bytes') > 0);
    assert.ok(s.declares('nodejs_eventloop_lag_seconds', 'gauge'));
    assert.ok(s.declares('nodejs_gc_duration_seconds', 'histogram'));
  }

  assert.equal(await ingest.stop(), 0);
  assert.equal(await windowing.stop(), 0);
});
