import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { configReader, readCommonConfig } from '../src/config.js';
import { ConfigError, TransientError } from '../src/errors.js';
import { startHealthServer } from '../src/health.js';
import { silentLogger } from '../src/log.js';
import { createReadiness, isPermanentError, probeKafka, watchConsumer } from '../src/readiness.js';
import { isConnectionLostDuringSasl } from '../src/kafka.js';
import { eventually } from '../src/testing.js';

function tracker(opts: { stallMs?: number; limit?: number } = {}) {
  let t = 1_000_000;
  const fatal: unknown[] = [];
  const r = createReadiness({
    log: silentLogger,
    now: () => t,
    sampleMs: 0,
    stallMs: opts.stallMs ?? 30_000,
    fatalRepeatLimit: opts.limit ?? 3,
    onFatal: (err) => fatal.push(err),
  });
  return { r, fatal, advance: (ms: number) => (t += ms) };
}

const permanent = Object.assign(new Error('MESSAGE_TOO_LARGE'), { name: 'KafkaJSProtocolError', retriable: false });
const connection = Object.assign(new Error('connect ECONNREFUSED'), { name: 'KafkaJSConnectionError', retriable: true });

test('conditions: a failing one is named with why until it holds again', () => {
  const { r } = tracker();
  assert.deepEqual(r.failing(), {});
  r.set('mqtt', false, 'connection lost');
  r.set('kafka', true);
  assert.deepEqual(r.failing(), { mqtt: 'connection lost' });
  assert.equal(r.ready(), false);
  r.set('mqtt', true);
  assert.equal(r.ready(), true);
});

test('progress: fails only after stallMs of pending work without progress', () => {
  const { r, advance } = tracker({ stallMs: 30_000 });
  let pending = 0;
  r.pending('kafka sends', () => pending);
  advance(3_600_000); // a long idle hour is no stall
  assert.deepEqual(r.failing(), {});
  pending = 5;
  advance(29_000);
  assert.deepEqual(r.failing(), {});
  advance(2_000);
  assert.match(r.failing().progress ?? '', /no progress for 31 s with pending work \(kafka sends: 5\)/);
  r.progress();
  assert.deepEqual(r.failing(), {});
  advance(31_000);
  assert.ok(r.failing().progress);
  pending = 0;
  assert.deepEqual(r.failing(), {}, 'no pending work: nothing is stalled');
});

test('batches: a non-retriable failure of the same batch is counted; the limit-th is fatal', () => {
  const { r, fatal } = tracker({ limit: 3 });
  const batch = { topic: 't', partition: 2, firstOffset: '100', lastOffset: '199', records: 100 };
  r.batchFailed(batch, permanent);
  assert.match(r.failing().batches ?? '', /^t\[2\] offsets 100\.\.199 failed 1x: MESSAGE_TOO_LARGE$/);
  r.batchFailed(batch, permanent);
  assert.match(r.failing().batches ?? '', /failed 2x/);
  assert.equal(fatal.length, 0);
  r.batchFailed(batch, permanent);
  assert.equal(fatal.length, 1);
  assert.match(r.failing().fatal ?? '', /t\[2\] offsets 100\.\.199 failed 3 times in a row/);
  r.batchFailed(batch, permanent);
  assert.equal(fatal.length, 1, 'onFatal is called once');
});

test('batches: another first offset starts counting again; a good batch clears; a rebalance forgets', () => {
  const { r, fatal } = tracker({ limit: 2 });
  r.batchFailed({ topic: 't', partition: 0, firstOffset: '1' }, permanent);
  r.batchFailed({ topic: 't', partition: 0, firstOffset: '5' }, permanent);
  assert.equal(fatal.length, 0);
  r.batchDone({ topic: 't', partition: 0 });
  assert.deepEqual(r.failing(), {});
  r.batchFailed({ topic: 't', partition: 1, firstOffset: '5' }, permanent);
  r.resetBatches();
  r.batchFailed({ topic: 't', partition: 1, firstOffset: '5' }, permanent);
  assert.equal(fatal.length, 0);
});

test('batches: transient errors, and any error while a broker link is down, do not count', () => {
  const { r, fatal } = tracker({ limit: 1 });
  const batch = { topic: 't', partition: 0, firstOffset: '1' };
  r.batchFailed(batch, connection);
  r.batchFailed(batch, new TransientError('registry.unavailable', 'registry down'));
  assert.deepEqual(r.failing(), {});
  r.set('kafka', false, 'cluster unreachable');
  r.batchFailed(batch, permanent);
  assert.deepEqual(Object.keys(r.failing()), ['kafka']);
  assert.equal(fatal.length, 0);
});

test('isPermanentError', () => {
  const rows: [unknown, boolean][] = [
    [permanent, true],
    [connection, false],
    [new TypeError('x is undefined'), true],
    [new Error('unknown, no retriable flag'), true],
    [new TransientError('x', 'y'), false],
    [Object.assign(new Error('gave up'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false, cause: permanent }), false],
    [Object.assign(new Error('wrapped'), { name: 'KafkaJSNonRetriableError', retriable: false, cause: connection }), false],
    [Object.assign(new Error('wrapped'), { name: 'KafkaJSNonRetriableError', retriable: false, cause: new TypeError('bug') }), true],
    [Object.assign(new Error('lock'), { name: 'KafkaJSLockTimeout', retriable: false }), false],
  ];
  for (const [err, expected] of rows) assert.equal(isPermanentError(err), expected, (err as Error).message);
});

const payload = (firstOffset: string): EachBatchPayload =>
  ({ batch: { topic: 't', partition: 0, messages: [{}, {}], firstOffset: () => firstOffset, lastOffset: () => String(Number(firstOffset) + 1) } }) as unknown as EachBatchPayload;

test('eachBatch: a throw is a failure (rethrown), a return clears it unless the handler reported one', async () => {
  const { r, fatal } = tracker({ limit: 2 });
  let mode: 'throw' | 'report' | 'ok' = 'throw';
  const handler = r.eachBatch(async (p) => {
    if (mode === 'throw') throw permanent;
    if (mode === 'report') r.batchFailed({ topic: p.batch.topic, partition: p.batch.partition, firstOffset: p.batch.firstOffset() }, permanent);
  });
  await assert.rejects(handler(payload('10')), /MESSAGE_TOO_LARGE/);
  assert.match(r.failing().batches ?? '', /t\[0\] offsets 10\.\.11 failed 1x/);
  mode = 'report'; // an aborted transaction the service retries itself
  await handler(payload('10'));
  assert.equal(fatal.length, 1);
  const { r: r2 } = tracker({ limit: 5 });
  const h2 = r2.eachBatch(async () => {
    if (mode !== 'ok') throw permanent;
  });
  await assert.rejects(h2(payload('10')));
  mode = 'ok';
  await h2(payload('10'));
  assert.deepEqual(r2.failing(), {});
});

function fakeConsumer() {
  const e = new EventEmitter();
  const events = { GROUP_JOIN: 'join', FETCH: 'fetch', END_BATCH_PROCESS: 'end', CRASH: 'crash', STOP: 'stop' };
  const consumer = { events, on: (name: string, f: (x: unknown) => void) => e.on(name, f) } as unknown as Consumer;
  return { consumer, emit: (name: keyof typeof events, payload: unknown = {}) => e.emit(events[name], { payload }) };
}

test('watchConsumer: in the group until a crash; fetching is progress; a crash without restart is fatal', () => {
  const { r, fatal, advance } = tracker({ stallMs: 10_000 });
  const c = fakeConsumer();
  watchConsumer(r, c.consumer, 'consumer');
  assert.deepEqual(Object.keys(r.failing()), ['consumer']);
  c.emit('GROUP_JOIN');
  assert.deepEqual(r.failing(), {});
  advance(11_000);
  assert.ok(r.failing().progress, 'a consumer that stops fetching is stalled');
  c.emit('FETCH');
  assert.deepEqual(r.failing(), {});
  c.emit('CRASH', { error: new Error('boom'), restart: true });
  assert.match(r.failing().consumer ?? '', /crashed: boom \(kafkajs restarts it\)/);
  c.emit('GROUP_JOIN');
  assert.deepEqual(r.failing(), {});
  c.emit('CRASH', { error: new Error('fatal thing'), restart: false });
  assert.equal(fatal.length, 1);
  c.emit('STOP');
  advance(60_000);
  assert.equal(r.failing().progress, undefined, 'a stopped consumer has no pending work');
});

// The error kafkajs raised when Kafka went down while a consumer's connection signed in (CI, 2026-12-03).
const saslConnectionLost = Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Connection error: read ECONNRESET'), { name: 'KafkaJSNonRetriableError', retriable: false });

test('a lost connection during SASL is told apart from wrong credentials', () => {
  const table: [unknown, boolean][] = [
    [saslConnectionLost, true],
    [Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Closed connection'), { name: 'KafkaJSSASLAuthenticationError' }), true],
    [Object.assign(new Error('crashed'), { cause: Object.assign(new Error('SASL PLAIN authentication failed: Connection timeout'), {}) }), true],
    [new Error('SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'), false],
    [Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Invalid username or password'), { name: 'KafkaJSSASLAuthenticationError' }), false],
    [Object.assign(new Error('Connection error: read ECONNRESET'), { name: 'KafkaJSConnectionError', retriable: true }), false], // kafkajs restarts these itself
    [new Error('boom'), false],
    [undefined, false],
  ];
  for (const [err, expected] of table) assert.equal(isConnectionLostDuringSasl(err), expected, String((err as Error | undefined)?.message));
});

test('watchConsumer restarts a consumer that lost its connection while signing in; other crashes stay fatal', async () => {
  const { r, fatal } = tracker({ stallMs: 10_000 });
  const c = fakeConsumer();
  let restarts = 0;
  let failNext = 1;
  const restart = async (): Promise<void> => {
    restarts++;
    if (failNext-- > 0) throw Object.assign(new Error('Connection error: connect ECONNREFUSED'), { retriable: true });
  };
  watchConsumer(r, c.consumer, 'consumer', { restart, waitsMs: [5, 10] });
  c.emit('GROUP_JOIN');
  c.emit('CRASH', { error: saslConnectionLost, restart: false });
  assert.match(r.failing().consumer ?? '', /crashed: SASL SCRAM SHA512 authentication failed: Connection error: read ECONNRESET \(restarting in 0.005 s\)/);
  assert.equal(fatal.length, 0);
  // the first restart fails (Kafka still down) and is tried again; the second one runs
  await eventually('the second restart', () => restarts === 2);
  c.emit('GROUP_JOIN');
  assert.deepEqual(r.failing(), {});
  c.emit('CRASH', { error: new Error('SASL SCRAM SHA512 authentication failed: Authentication failed due to invalid credentials'), restart: false });
  assert.equal(fatal.length, 1, 'wrong credentials stay fatal');
  assert.equal(restarts, 2);

  // Without a restart function the old rule holds: fatal.
  const t2 = tracker();
  const c2 = fakeConsumer();
  watchConsumer(t2.r, c2.consumer, 'consumer');
  c2.emit('CRASH', { error: saslConnectionLost, restart: false });
  assert.equal(t2.fatal.length, 1);
});

test('/readyz lists the failing checks with why; 200 when none fail', async (t) => {
  const { r } = tracker();
  const server = await startHealthServer(0, r.failing, '127.0.0.1');
  t.after(() => server.close());
  r.set('mqtt.subscription', false, 'not yet subscribed');
  let res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { status: 'not-ready', failing: ['mqtt.subscription'], reasons: { 'mqtt.subscription': 'not yet subscribed' } });
  r.set('mqtt.subscription', true);
  res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ready', failing: [], reasons: {} });
});

test('PROGRESS_STALL_MS and FATAL_REPEAT_LIMIT: defaults, and errors naming the variable', () => {
  const c = configReader({});
  assert.deepEqual(c.done(readCommonConfig(c, 'x')).health, { stallMs: 30_000, fatalRepeatLimit: 10 });
  for (const [env, variable] of [
    [{ PROGRESS_STALL_MS: 'soon' }, 'PROGRESS_STALL_MS'],
    [{ PROGRESS_STALL_MS: '10' }, 'PROGRESS_STALL_MS'],
    [{ FATAL_REPEAT_LIMIT: '0' }, 'FATAL_REPEAT_LIMIT'],
  ] as const) {
    const reader = configReader(env);
    const value = readCommonConfig(reader, 'x');
    assert.throws(
      () => reader.done(value),
      (e: unknown) => e instanceof ConfigError && e.variable === variable,
    );
  }
});

test('probeKafka: the kafka check follows a periodic cluster request; a hung one fails it and a fresh client is used', async () => {
  const { r } = tracker();
  let mode: 'ok' | 'down' | 'hang' = 'ok';
  let admins = 0;
  const kafka = {
    admin: () => {
      admins++;
      return {
        connect: async () => {},
        disconnect: async () => {},
        describeCluster: () => (mode === 'ok' ? Promise.resolve({}) : mode === 'down' ? Promise.reject(new Error('ECONNREFUSED')) : new Promise(() => {})),
      };
    },
  } as unknown as Pick<Kafka, 'admin'>;
  const probe = probeKafka(kafka, r, { intervalMs: 20, timeoutMs: 30 });
  const kafkaCheck = (): string | undefined => r.failing().kafka;
  await eventually('a first probe', () => admins >= 1 && kafkaCheck() === undefined);
  mode = 'down';
  await eventually('the probe to see the cluster down', () => /cluster unreachable: ECONNREFUSED/.test(kafkaCheck() ?? ''));
  mode = 'hang';
  await eventually('the probe to time out', () => /no answer within 30 ms/.test(kafkaCheck() ?? ''));
  mode = 'ok';
  await eventually('the probe to pass again', () => kafkaCheck() === undefined);
  assert.deepEqual(r.failing(), {});
  assert.ok(admins >= 3, 'a new admin client after each failure');
  await probe.stop();
});

test('after stop() (shutdown) a fatal error no longer exits', () => {
  const { r, fatal } = tracker();
  r.stop();
  r.fatal('consumer crashed while leaving its group');
  assert.equal(fatal.length, 0);
});
