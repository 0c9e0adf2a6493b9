import assert from 'node:assert/strict';
import test from 'node:test';
import type { EachMessagePayload, Kafka, KafkaMessage } from 'kafkajs';
import { collect, incident } from '../src/testing.js';

/** A Kafka whose one consumer the test feeds by hand: what `collect` sees of kafkajs. */
function fakeKafka() {
  const listeners = new Map<string, ((e: { payload: { error: Error; restart: boolean } }) => void)[]>();
  let eachMessage: ((p: EachMessagePayload) => Promise<void>) | undefined;
  let disconnects = 0;
  const consumer = {
    events: { CRASH: 'consumer.crash' },
    on: (event: string, fn: (e: { payload: { error: Error; restart: boolean } }) => void) => void listeners.set(event, [...(listeners.get(event) ?? []), fn]),
    connect: async () => {},
    subscribe: async () => {},
    run: async (config: { eachMessage: (p: EachMessagePayload) => Promise<void> }) => void (eachMessage = config.eachMessage),
    disconnect: async () => void disconnects++,
  };
  let offset = 0;
  return {
    kafka: { consumer: () => consumer } as unknown as Kafka,
    async deliver(value: Buffer | null, extra: Partial<KafkaMessage> = {}, partition = 0): Promise<void> {
      const message = { key: Buffer.from('car-1'), value, timestamp: '1700000000000', attributes: 0, offset: String(offset++), headers: {}, ...extra } as KafkaMessage;
      await eachMessage!({ topic: 't', partition, message, heartbeat: async () => {}, pause: () => () => {} });
    },
    crash(error: Error, restart: boolean): void {
      for (const fn of listeners.get('consumer.crash') ?? []) fn({ payload: { error, restart } });
    },
    disconnects: () => disconnects,
  };
}

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

test('collect keeps decoded records with their key, headers and position, and waits for a count or a condition', async () => {
  const fake = fakeKafka();
  const c = await collect(fake.kafka, { topic: 't', decode: (v: Buffer) => JSON.parse(v.toString()) as { n: number } });
  const waiting = c.waitFor(2, 1_000);
  await fake.deliver(json({ n: 1 }), { headers: { reason: Buffer.from('late'), n: '7' } });
  await fake.deliver(json({ n: 2 }), {}, 2);
  const records = await waiting;
  assert.deepEqual(records[0], { topic: 't', partition: 0, offset: '0', timestamp: '1700000000000', key: 'car-1', headers: { reason: 'late', n: '7' }, value: { n: 1 } });
  assert.equal(records[1]!.partition, 2);
  assert.deepEqual(c.values(), [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(await c.waitFor((rs) => rs.find((r) => r.value.n === 2)?.offset, 1_000), '1');
  await c.stop();
  await c.stop();
  assert.equal(fake.disconnects(), 1, 'stop leaves once');
});

test('collect with an Avro-like codec object, a filter, and raw values without a decoder', async () => {
  const fake = fakeKafka();
  const codec = { decode: async (v: Buffer) => v.toString().toUpperCase() };
  const decoded = await collect(fake.kafka, { topic: 't', decode: codec, filter: (r) => r.headers['pitwall.control'] === undefined });
  await fake.deliver(Buffer.from('a'));
  await fake.deliver(null, { headers: { 'pitwall.control': 'idle' } });
  assert.deepEqual(decoded.values(), ['A'], 'the control record is left out, not decoded');

  const raw = await collect(fake.kafka, { topic: 't' });
  await fake.deliver(null, { key: null });
  assert.deepEqual(
    raw.records.map((r) => [r.key, r.value]),
    [[null, null]],
  );
});

test('a record that cannot be decoded fails the next wait at once, naming where it is', async () => {
  const fake = fakeKafka();
  const c = await collect(fake.kafka, { topic: 't', decode: (v: Buffer) => JSON.parse(v.toString()) as unknown });
  await fake.deliver(Buffer.from('not json'));
  const started = Date.now();
  await assert.rejects(c.waitFor(1, 10_000), /reading t: .*JSON/);
  assert.ok(Date.now() - started < 1_000, 'without waiting for the timeout');
  assert.equal(c.records.length, 0);

  const tombstones = await collect(fake.kafka, { topic: 't', decode: (v: Buffer) => v.toString() });
  await fake.deliver(null);
  await assert.rejects(tombstones.waitFor(1, 10_000), /t\[0\]@\d+ has no value to decode/);
});

test('a wait times out naming what, the topic and how many records came; a crash kafkajs does not restart fails it', async () => {
  const fake = fakeKafka();
  const c = await collect(fake.kafka, { topic: 't' });
  await fake.deliver(Buffer.from('x'));
  await assert.rejects(c.waitFor(3, 100, 'three readings'), /timed out after 100 ms waiting for three readings on t \(1 records collected\)/);
  fake.crash(new Error('retriable'), true);
  await c.waitFor(1, 100);
  fake.crash(new Error('SASL authentication failed'), false);
  await assert.rejects(c.waitFor(1, 100), /reading t: SASL authentication failed/);
});

test('the incident fixture keeps its timestamps relative to when it opened', () => {
  const at = 1_800_000_000_000;
  const i = incident({ vehicle_id: 'car-9' }, at);
  assert.deepEqual([i.opened_at, i.first_window_start, i.updated_at, i.last_window_end, i.last_anomalous_window_end, i.history[0]!.at], [at, at, at + 60_000, at + 60_000, at + 60_000, at + 60_000]);
  assert.equal(i.vehicle_id, 'car-9');
  assert.equal(incident().opened_at, 1_700_000_000_000);
});
