import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Consumer, Kafka } from 'kafkajs';
import { createCounters, parseSeriesKey, seriesKey } from '../src/counters.js';
import { startHealthServer } from '../src/health.js';
import { silentLogger } from '../src/log.js';
import { createMetricsRegistry, exportReadiness, gauge, histogram, LATENCY_BUCKETS, Registry, secondsSince, startConsumerLagPoller, watchConsumerLag } from '../src/metrics.js';
import { createReadiness } from '../src/readiness.js';

test('text format: counters with reasons, a histogram and a gauge', async () => {
  const registry = new Registry();
  const counters = createCounters(
    {
      pitwall_test_received_total: { help: 'Messages received.' },
      pitwall_test_dead_lettered_total: { help: 'Messages dead-lettered, by reason.', labels: ['reason'] },
    },
    registry,
  );
  counters.inc('pitwall_test_received_total', 3);
  counters.inc('pitwall_test_dead_lettered_total', 1, 'payload.not_json');
  counters.inc('pitwall_test_dead_lettered_total', 2, 'field.missing');
  counters.inc('pitwall_test_dead_lettered_total', 1, 'payload.not_json');
  const h = histogram(registry, { name: 'pitwall_test_latency_seconds', help: 'Latency.', buckets: [0.1, 1, 10] });
  h.observe(0.05);
  h.observe(2);
  gauge(registry, { name: 'pitwall_test_open_windows', help: 'Open windows.' }).set(7);

  assert.equal(
    await registry.metrics(),
    [
      '# HELP pitwall_test_received_total Messages received.',
      '# TYPE pitwall_test_received_total counter',
      'pitwall_test_received_total 3',
      '',
      '# HELP pitwall_test_dead_lettered_total Messages dead-lettered, by reason.',
      '# TYPE pitwall_test_dead_lettered_total counter',
      'pitwall_test_dead_lettered_total{reason="payload.not_json"} 2',
      'pitwall_test_dead_lettered_total{reason="field.missing"} 2',
      '',
      '# HELP pitwall_test_latency_seconds Latency.',
      '# TYPE pitwall_test_latency_seconds histogram',
      'pitwall_test_latency_seconds_bucket{le="0.1"} 1',
      'pitwall_test_latency_seconds_bucket{le="1"} 1',
      'pitwall_test_latency_seconds_bucket{le="10"} 2',
      'pitwall_test_latency_seconds_bucket{le="+Inf"} 2',
      'pitwall_test_latency_seconds_sum 2.05',
      'pitwall_test_latency_seconds_count 2',
      '',
      '# HELP pitwall_test_open_windows Open windows.',
      '# TYPE pitwall_test_open_windows gauge',
      'pitwall_test_open_windows 7',
      '',
    ].join('\n'),
  );
  // stats() keep their shape: the same numbers, read synchronously.
  assert.deepEqual(counters.snapshot(), {
    pitwall_test_received_total: 3,
    pitwall_test_dead_lettered_total: 4,
    'pitwall_test_dead_lettered_total{reason="payload.not_json"}': 2,
    'pitwall_test_dead_lettered_total{reason="field.missing"}': 2,
  });
  assert.equal(counters.get('pitwall_test_dead_lettered_total{reason="field.missing"}'), 2);
  assert.equal(counters.get('pitwall_test_dead_lettered_total'), 4);
  assert.equal(counters.get('pitwall_test_unknown_total'), 0);
});

test('counters: declared names start at 0; a name-only family takes the labels it is used with; declared labels are fixed', async () => {
  const registry = new Registry();
  const counters = createCounters(['pitwall_a_total', 'pitwall_b_total'], registry);
  assert.deepEqual(counters.snapshot(), { pitwall_a_total: 0, pitwall_b_total: 0 });
  assert.match(await registry.metrics(), /^pitwall_a_total 0$/m);
  // Several labels in one key (scoring's labelled()), escaped values.
  counters.inc('pitwall_b_total{role="shadow",version="2"}', 5);
  counters.inc('pitwall_b_total{role="active",version="a\\"b"}', 1);
  const text = await registry.metrics();
  assert.match(text, /^pitwall_b_total\{role="shadow",version="2"\} 5$/m);
  assert.match(text, /^pitwall_b_total\{role="active",version="a\\"b"\} 1$/m);
  assert.doesNotMatch(text, /^pitwall_b_total 0$/m, 'the declared zero is no series of a labelled family');
  assert.equal(counters.get('pitwall_b_total{role="shadow",version="2"}'), 5);

  const fixed = createCounters({ pitwall_c_total: { labels: ['reason'] } }, registry);
  assert.throws(() => fixed.inc('pitwall_c_total{outcome="x"}'), /labels \[reason\], not outcome/);
  assert.throws(() => fixed.inc('pitwall_c_total', Number.NaN), RangeError);
});

test('counters: one family per registry, shared by every Counters on it; none without a registry leaks', async () => {
  const registry = new Registry();
  const core = createCounters({ pitwall_shared_total: { help: 'h', labels: ['reason'] } }, registry);
  const other = createCounters([], registry);
  core.inc('pitwall_shared_total', 1, 'x');
  other.inc('pitwall_shared_total', 2, 'x');
  assert.equal(core.get('pitwall_shared_total{reason="x"}'), 3);
  assert.match(await registry.metrics(), /^pitwall_shared_total\{reason="x"\} 3$/m);
  // Private registries: two services' cores in one test process count apart.
  const a = createCounters(['pitwall_x_total']);
  const b = createCounters(['pitwall_x_total']);
  a.inc('pitwall_x_total');
  assert.equal(b.get('pitwall_x_total'), 0);
  assert.notEqual(a.registry, b.registry);
});

test('series keys round-trip', () => {
  const labels = { reason: 'a"b\\c\nd', role: 'x' };
  const key = seriesKey('m_total', labels);
  assert.equal(key, 'm_total{reason="a\\"b\\\\c\\nd",role="x"}');
  assert.deepEqual(parseSeriesKey(key), { name: 'm_total', labels });
  assert.deepEqual(parseSeriesKey('m_total'), { name: 'm_total', labels: {} });
});

test('secondsSince clamps a time ahead of the clock to 0', () => {
  assert.equal(secondsSince(1_000, 3_500), 2.5);
  assert.equal(secondsSince(5_000, 3_500), 0);
});

test('the health server serves /metrics (process metrics included) next to /healthz and /readyz', async (t) => {
  const registry = createMetricsRegistry();
  const counters = createCounters({ pitwall_test_things_total: { help: 'Things.' } }, registry);
  counters.inc('pitwall_test_things_total', 2);
  const r = createReadiness({ log: silentLogger, sampleMs: 0 });
  exportReadiness(registry, r.checks);
  r.set('kafka', true);
  r.set('mqtt', false, 'connection lost');
  const server = await startHealthServer(0, r.failing, { host: '127.0.0.1', metrics: registry });
  t.after(() => server.close());

  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.match(text, /^pitwall_test_things_total 2$/m);
  assert.match(text, /^pitwall_readiness_check\{check="kafka"\} 1$/m);
  assert.match(text, /^pitwall_readiness_check\{check="mqtt"\} 0$/m);
  assert.match(text, /^pitwall_readiness_check\{check="progress"\} 1$/m);
  assert.match(text, /^pitwall_ready 0$/m);
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  r.set('mqtt', true);
  assert.match(await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text(), /^pitwall_ready 1$/m);
  assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);

  // Without a registry there is no /metrics.
  const bare = await startHealthServer(0, {}, '127.0.0.1');
  t.after(() => bare.close());
  assert.equal((await fetch(`http://127.0.0.1:${bare.port}/metrics`)).status, 404);
});

test('latency buckets reach minutes', () => {
  assert.ok(LATENCY_BUCKETS.at(-1)! >= 300);
  assert.deepEqual(
    [...LATENCY_BUCKETS].sort((a, b) => a - b),
    [...LATENCY_BUCKETS],
  );
});

function fakeConsumer() {
  const emitter = new EventEmitter();
  const events = { GROUP_JOIN: 'join', END_BATCH_PROCESS: 'end', STOP: 'stop' };
  const consumer = { events, on: (e: string, l: (...a: unknown[]) => void) => emitter.on(e, l) } as unknown as Consumer;
  return { consumer, emit: (e: string, payload: unknown) => emitter.emit(e, { payload }) };
}

test('fetch lag: kafkajs batch events set it per partition; a rejoin drops partitions no longer owned', async () => {
  const registry = new Registry();
  const { consumer, emit } = fakeConsumer();
  watchConsumerLag(registry, consumer);
  emit('join', { groupId: 'g', memberAssignment: { t: [0, 1] } });
  emit('end', { topic: 't', partition: 0, offsetLag: '12' });
  emit('end', { topic: 't', partition: 1, offsetLag: '0' });
  let text = await registry.metrics();
  assert.match(text, /^pitwall_consumer_fetch_lag_records\{group="g",topic="t",partition="0"\} 12$/m);
  assert.match(text, /^pitwall_consumer_fetch_lag_records\{group="g",topic="t",partition="1"\} 0$/m);
  emit('join', { groupId: 'g', memberAssignment: { t: [1] } });
  text = await registry.metrics();
  assert.doesNotMatch(text, /partition="0"/);
  assert.match(text, /partition="1"\} 0$/m);
  emit('stop', {});
  assert.doesNotMatch(await registry.metrics(), /partition=/);
});

test('committed lag: end offset minus the committed offset per partition, from the log start without a commit', async () => {
  const registry = new Registry();
  const calls: string[] = [];
  const admin = {
    connect: async () => void calls.push('connect'),
    disconnect: async () => void calls.push('disconnect'),
    fetchTopicOffsets: async (topic: string) => {
      calls.push(`ends ${topic}`);
      return [
        { partition: 0, offset: '100', high: '100', low: '0' },
        { partition: 1, offset: '50', high: '50', low: '10' },
      ];
    },
    fetchOffsets: async ({ groupId, topics }: { groupId: string; topics: string[] }) => {
      calls.push(`committed ${groupId} ${topics.join(',')}`);
      return [
        {
          topic: 't',
          partitions: [
            { partition: 0, offset: '90', metadata: null },
            { partition: 1, offset: '-1', metadata: null },
          ],
        },
      ];
    },
  };
  const kafka = { admin: () => admin } as unknown as Kafka;
  const poller = startConsumerLagPoller({ kafka, registry, groups: [{ groupId: 'g', topics: ['t'] }], intervalMs: 60_000, log: silentLogger });
  await poller.refresh();
  await poller.stop();
  const text = await registry.metrics();
  assert.match(text, /^pitwall_consumer_committed_lag_records\{group="g",topic="t",partition="0"\} 10$/m);
  assert.match(text, /^pitwall_consumer_committed_lag_records\{group="g",topic="t",partition="1"\} 40$/m);
  assert.match(text, /# HELP pitwall_consumer_committed_lag_records .*earliest open window/);
  assert.equal(calls.filter((c) => c === 'connect').length, 1, 'one admin connection for every refresh');
});
