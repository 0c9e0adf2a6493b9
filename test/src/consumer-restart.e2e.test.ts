/**
 * A consumer that kafkajs leaves down after a crash is started again in the same process, on the
 * real broker. kafkajs turns a connection lost while signing in (SASL) into a non-retriable error
 * and does not restart its consumer; the services then exited (the Kafka outage test failed once
 * that way in CI). watchConsumer now restarts such a consumer with runConsumer. Here the crash is
 * made on purpose, by throwing that very error from a batch, and the test checks that the same
 * kafkajs consumer object joins again and goes on consuming, while /readyz said it was down; a
 * crash of any other kind stays fatal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { createReadiness, ensureTopics, runConsumer, silentLogger, watchConsumer } from '@pitwall/common';
import { kafkaClientConfig, runId, waitFor } from './support/stack.js';

const { Kafka, KafkaJSNonRetriableError, logLevel } = kafkajs; // CommonJS: its error classes are not named ESM exports
const kafka = new Kafka({ clientId: 'e2e-consumer-restart', ...kafkaClientConfig(), logLevel: logLevel.NOTHING });

test('a consumer crashed by a connection lost during SASL is restarted in process and consumes on', { timeout: 120_000 }, async () => {
  const id = runId();
  const topic = `pitwall.test.restart.${id}`;
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic }], { partitions: 1 });
  const producer = kafka.producer();
  await producer.connect();
  const consumer = kafka.consumer({ groupId: `pitwall-test-restart-${id}`, maxWaitTimeInMs: 100 });
  const fatal: unknown[] = [];
  const readiness = createReadiness({ log: silentLogger, onFatal: (err) => fatal.push(err), sampleMs: 0 });
  const seen: string[] = [];
  const notReady: string[] = [];
  let crashOn: string | undefined = 'm2';
  const run = (): Promise<void> =>
    runConsumer(
      consumer,
      { topic, fromBeginning: true },
      {
        eachMessage: async ({ message }) => {
          const value = String(message.value);
          if (value === crashOn) {
            crashOn = undefined;
            const why = readiness.failing();
            if (Object.keys(why).length > 0) notReady.push(JSON.stringify(why));
            throw new KafkaJSNonRetriableError('SASL SCRAM SHA512 authentication failed: Connection error: read ECONNRESET');
          }
          seen.push(value);
        },
      },
    );
  watchConsumer(readiness, consumer, 'consumer', { restart: run, log: silentLogger, waitsMs: [500] });
  try {
    await run();
    await producer.send({ topic, messages: ['m1', 'm2', 'm3'].map((value) => ({ value })) });
    // m2 crashes the consumer; kafkajs does not restart it; watchConsumer does, and m2 is read again.
    let sawDown = false;
    await waitFor(
      'the restarted consumer to read m2 and m3',
      () => {
        if (readiness.failing().consumer?.includes('restarting')) sawDown = true;
        return seen.includes('m3') ? true : undefined;
      },
      60_000,
      20,
    );
    assert.ok(sawDown, '/readyz said the consumer was down while it restarted');
    assert.deepEqual(seen.slice(0, 1), ['m1']);
    assert.ok(seen.includes('m2') && seen.includes('m3'), `read after the restart: ${seen.join(',')}`);
    assert.equal(fatal.length, 0);
    await producer.send({ topic, messages: [{ value: 'm4' }] });
    await waitFor('m4 after the restart', () => (seen.includes('m4') ? true : undefined), 30_000);
    assert.equal(readiness.failing().consumer, undefined, 'ready again');

    // Any other crash kafkajs leaves down is still fatal.
    crashOn = 'm5';
    const other = kafka.consumer({ groupId: `pitwall-test-restart-other-${id}`, maxWaitTimeInMs: 100 });
    const r2 = createReadiness({ log: silentLogger, onFatal: (err) => fatal.push(err), sampleMs: 0 });
    watchConsumer(r2, other, 'consumer', { restart: () => Promise.reject(new Error('must not be called')), log: silentLogger, waitsMs: [10] });
    await runConsumer(
      other,
      { topic, fromBeginning: true },
      {
        eachMessage: async ({ message }) => {
          if (String(message.value) === 'm5') throw new KafkaJSNonRetriableError('SASL SCRAM SHA512 authentication failed: invalid credentials');
        },
      },
    );
    await producer.send({ topic, messages: [{ value: 'm5' }] });
    await waitFor('the other consumer to be fatal', () => (fatal.length > 0 ? true : undefined), 30_000);
    await other.disconnect();
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});
