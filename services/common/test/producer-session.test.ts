import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Producer } from 'kafkajs';
import { createProducerSession } from '../src/kafka.js';

/** A kafkajs producer stand-in: records calls; connect fails while `failConnects` > 0. */
function fakes() {
  const made: Array<{ id: number; connects: number; disconnects: number; sent: number }> = [];
  let failConnects = 0;
  const make = (): Producer => {
    const me = { id: made.length, connects: 0, disconnects: 0, sent: 0 };
    made.push(me);
    let connected = false;
    return {
      async connect() {
        me.connects++;
        if (failConnects > 0) {
          failConnects--;
          throw Object.assign(new Error('SASL SCRAM SHA512 authentication failed: Closed connection'), { name: 'KafkaJSSASLAuthenticationError' });
        }
        connected = true;
      },
      async disconnect() {
        me.disconnects++;
        connected = false;
      },
      async sendBatch() {
        if (!connected) throw new Error('The producer is disconnected');
        me.sent++;
        return [];
      },
    } as unknown as Producer;
  };
  return { made, make, failNextConnects: (n: number) => (failConnects = n) };
}

test('reset replaces the producer with a fresh, connected one', async () => {
  const f = fakes();
  const s = createProducerSession(f.make);
  await s.connect();
  await s.sendBatch({ topicMessages: [] });
  await s.reset();
  await s.sendBatch({ topicMessages: [] });
  assert.equal(f.made.length, 2);
  assert.deepEqual(
    f.made.map((p) => [p.connects, p.disconnects, p.sent]),
    [
      [1, 1, 1],
      [1, 0, 1],
    ],
  );
});

test('a reset whose connect fails: the next send connects the fresh producer first', async () => {
  const f = fakes();
  const s = createProducerSession(f.make);
  await s.connect();
  f.failNextConnects(1);
  await assert.rejects(s.reset(), /Closed connection/);
  await s.sendBatch({ topicMessages: [] });
  assert.equal(f.made.length, 2);
  assert.deepEqual([f.made[1]!.connects, f.made[1]!.sent], [2, 1]);
});

test('concurrent sends share one connect; after disconnect sends fail and nothing reconnects', async () => {
  const f = fakes();
  const s = createProducerSession(f.make);
  await Promise.all([s.sendBatch({ topicMessages: [] }), s.sendBatch({ topicMessages: [] })]);
  assert.equal(f.made[0]!.connects, 1);
  await s.disconnect();
  await assert.rejects(s.sendBatch({ topicMessages: [] }), /disconnected/);
  assert.equal(f.made[0]!.connects, 1);
});
