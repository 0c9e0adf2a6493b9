import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Message, TopicMessages } from 'kafkajs';
import {
  batchSize,
  createBoundedSender,
  isTooLarge,
  recordSize,
  RECORD_BATCH_OVERHEAD,
  splitRecords,
  toTopicMessages,
  toTopicRecords,
  TOO_LARGE_HEADER,
  truncateToFit,
  varintSize,
  type TopicRecord,
} from '../src/send.js';
import { DLQ_HEADER } from '../src/deadletter.js';
import { PitwallError } from '../src/errors.js';

// kafkajs's own encoders: the bytes a produce request really carries.
const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder') as { sizeOfVarInt(n: number): number };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: object) => unknown;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (b: object) => Promise<{ buffer: Buffer }> };

/** Encoded size of one partition's batch, as kafkajs's produce request v3 builds it. */
async function realBatchSize(messages: Message[], timestamps?: number[]): Promise<number> {
  const now = Date.now();
  const first = timestamps ? Math.min(...timestamps) : now;
  const records = messages.map((m, i) => Record({ ...m, offsetDelta: i, timestampDelta: (timestamps?.[i] ?? now) - first }));
  const batch = await RecordBatch({
    records,
    firstTimestamp: first,
    maxTimestamp: now,
    producerId: 123456789,
    producerEpoch: 3,
    firstSequence: 1000,
    transactional: true,
    lastOffsetDelta: records.length - 1,
  });
  return batch.buffer.length;
}

const bytes = (n: number, fill = 7): Buffer => Buffer.alloc(n, fill);
const rec = (topic: string, value: Buffer | string | null, key: string | null = 'k', headers?: Message['headers']): TopicRecord => ({
  topic,
  message: { key, value, ...(headers ? { headers } : {}) },
});

test('varintSize matches kafkajs for signed varints', () => {
  for (const n of [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 20, 2 ** 27, 2 ** 31 - 1, -(2 ** 31)]) {
    assert.equal(varintSize(n), Encoder.sizeOfVarInt(n), `n=${n}`);
  }
});

const cases: Array<[string, Message[], number[]?]> = [
  ['null key, empty value', [{ key: null, value: Buffer.alloc(0) }]],
  ['null value (tombstone, idle marker)', [{ key: 'vehicle-1', value: null, headers: { 'pitwall.control': 'idle' } }]],
  ['string key and value, multibyte', [{ key: 'fahrzeug-ü', value: 'äöü€'.repeat(100) }]],
  [
    'value at a varint boundary',
    [
      { key: 'k', value: bytes(8191) },
      { key: 'k', value: bytes(8192) },
    ],
  ],
  ['large value', [{ key: 'k', value: bytes(1_000_000) }]],
  ['headers: strings, buffers, arrays', [{ key: 'k', value: bytes(100), headers: { a: 'x', b: Buffer.from([1, 2, 3]), c: ['1', '22', Buffer.from('333')], 'pitwall.dlq.message': 'm'.repeat(1000) } }]],
  ['many small records', Array.from({ length: 5000 }, (_, i) => ({ key: `vehicle-${i}`, value: bytes(900 + (i % 13)) }))],
  [
    'explicit timestamps far apart',
    [
      { key: 'a', value: bytes(10) },
      { key: 'b', value: bytes(10) },
    ],
    [0, Date.now()],
  ],
];
for (const [name, messages, timestamps] of cases) {
  test(`estimate >= kafkajs's encoded size, and close to it: ${name}`, async () => {
    const real = await realBatchSize(messages, timestamps);
    const estimate = batchSize(messages.map((message) => ({ topic: 't', message })));
    assert.ok(estimate >= real, `estimate ${estimate} < real ${real}`);
    assert.ok(estimate - real <= 20 * messages.length, `estimate ${estimate} is more than 20 bytes per record above real ${real}`);
  });
}

test('recordSize: no headers counts as empty headers', () => {
  for (const m of [
    { key: 'k', value: bytes(10) },
    { key: null, value: null },
    { key: 'fahrzeug-ü', value: bytes(20_000) },
  ]) {
    assert.equal(recordSize(m), recordSize({ ...m, headers: {} }));
  }
});

const splitCases: Array<[string, TopicRecord[], { maxBytes: number; maxRecords?: number }, number[]]> = [
  ['nothing', [], { maxBytes: 1000 }, []],
  ['all in one', [rec('a', bytes(100)), rec('b', bytes(100))], { maxBytes: 1000 }, []],
  ['by bytes', Array.from({ length: 50 }, (_, i) => rec(i % 2 ? 'a' : 'b', bytes(100 + i))), { maxBytes: 1000 }, []],
  ['by count', Array.from({ length: 10 }, () => rec('a', bytes(10))), { maxBytes: 100_000, maxRecords: 3 }, []],
  ['one over the budget alone, in the middle', [rec('a', bytes(100)), rec('a', bytes(5000)), rec('a', bytes(100))], { maxBytes: 1000 }, [1]],
  ['exactly at the budget', [rec('a', bytes(1000 - RECORD_BATCH_OVERHEAD - recordSize({ key: 'k', value: bytes(0) }) - 2))], { maxBytes: 1000 }, []],
];
for (const [name, records, limits, tooLarge] of splitCases) {
  test(`splitRecords: ${name}`, () => {
    const split = splitRecords(records, limits);
    for (const chunk of split.chunks) {
      assert.ok(chunk.length > 0);
      assert.ok(batchSize(chunk) <= limits.maxBytes, `chunk of ${batchSize(chunk)} bytes over ${limits.maxBytes}`);
      if (limits.maxRecords) assert.ok(chunk.length <= limits.maxRecords);
    }
    assert.deepEqual(
      split.tooLarge.map((t) => t.index),
      tooLarge,
    );
    for (const t of split.tooLarge) assert.equal(t.bytes, RECORD_BATCH_OVERHEAD + recordSize(records[t.index]!.message));
    // Order preserved: the chunks are the input without the too-large records.
    assert.deepEqual(
      split.chunks.flat(),
      records.filter((_, i) => !tooLarge.includes(i)),
    );
  });
}

test('toTopicMessages/toTopicRecords keep each topic in order', () => {
  const tm: TopicMessages[] = [
    {
      topic: 'a',
      messages: [
        { key: '1', value: 'x' },
        { key: '2', value: 'y' },
      ],
    },
    { topic: 'b', messages: [{ key: '3', value: 'z' }] },
  ];
  assert.deepEqual(toTopicMessages(toTopicRecords(tm)), tm);
});

const truncateCases: Array<[string, TopicRecord, number]> = [
  ['fits already', rec('dlq', bytes(100), 'k', { [DLQ_HEADER.reason]: 'payload.too_large' }), 1000],
  ['value cut', rec('dlq', bytes(40_000), 'k', { [DLQ_HEADER.reason]: 'payload.too_large' }), 16_000],
  ['string value cut', rec('dlq', 'ä'.repeat(20_000), 'k'), 4096],
  ['huge headers cut too', rec('dlq', bytes(5000), 'key'.repeat(100), { [DLQ_HEADER.message]: 'm'.repeat(3000), other: 'o'.repeat(3000) }), 1200],
];
for (const [name, record, max] of truncateCases) {
  test(`truncateToFit: ${name}`, () => {
    const out = truncateToFit(record, max)!;
    assert.ok(out, 'fits');
    assert.ok(RECORD_BATCH_OVERHEAD + recordSize(out.message) <= max);
    assert.equal(out.topic, record.topic);
    if (RECORD_BATCH_OVERHEAD + recordSize(record.message) <= max) {
      assert.equal(out, record);
      return;
    }
    const original = typeof record.message.value === 'string' ? Buffer.from(record.message.value) : (record.message.value as Buffer);
    assert.equal(out.message.headers![TOO_LARGE_HEADER.truncated], 'true');
    assert.equal(out.message.headers![TOO_LARGE_HEADER.originalSize], String(original.length));
    const value = out.message.value as Buffer;
    assert.ok(value.length > 0 && value.length < original.length);
    assert.deepEqual(value, original.subarray(0, value.length), 'a prefix of the raw bytes');
    assert.ok(max - RECORD_BATCH_OVERHEAD - recordSize(out.message) < 64, 'uses the room it has');
  });
}

test('truncateToFit keeps an original size already recorded, and gives up below any useful size', () => {
  const once = truncateToFit(rec('dlq', bytes(50_000)), 20_000)!;
  const twice = truncateToFit(once, 5000)!;
  assert.equal(twice.message.headers![TOO_LARGE_HEADER.originalSize], '50000');
  assert.equal(truncateToFit(rec('dlq', bytes(50_000)), 100), undefined);
});

test('isTooLarge recognises kafkajs refusals, also wrapped', () => {
  const table: Array<[unknown, boolean]> = [
    [{ name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false }, true],
    [{ name: 'KafkaJSProtocolError', type: 'RECORD_LIST_TOO_LARGE', code: 18 }, true],
    [{ name: 'KafkaJSNonRetriableError', cause: { name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE' } }, true],
    [{ name: 'KafkaJSProtocolError', code: 10 }, true],
    [{ name: 'KafkaJSProtocolError', type: 'NOT_LEADER_OR_FOLLOWER', code: 6 }, false],
    [new Error('boom'), false],
    [undefined, false],
  ];
  for (const [err, expected] of table) assert.equal(isTooLarge(err), expected, JSON.stringify(err));
});

/** A fake broker: refuses any send whose batch (estimated) is over `limit`, records the rest. */
function fakeBroker(limit: number) {
  const sent: TopicMessages[][] = [];
  let concurrent = 0;
  let refusals = 0;
  const send = async (tm: TopicMessages[]): Promise<void> => {
    assert.equal(concurrent++, 0, 'chunks are sent one after another');
    await new Promise((r) => setImmediate(r));
    concurrent--;
    if (batchSize(toTopicRecords(tm)) > limit) {
      refusals++;
      throw Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
        name: 'KafkaJSProtocolError',
        type: 'MESSAGE_TOO_LARGE',
        code: 10,
        retriable: false,
      });
    }
    sent.push(tm);
  };
  return { send, sent, refusals: () => refusals, records: () => sent.flatMap((tm) => toTopicRecords(tm)) };
}

test('bounded sender: sends chunks under the budget, in order', async () => {
  const broker = fakeBroker(10_000);
  const sender = createBoundedSender({ maxBytes: 10_000, service: 'x', dlqTopic: 'dlq' });
  const input = toTopicMessages(Array.from({ length: 300 }, (_, i) => rec(i % 3 ? 'features' : 'late', bytes(200), `v${i % 7}`)));
  const report = await sender.send(broker.send, input);
  assert.deepEqual(broker.records(), toTopicRecords(input));
  assert.equal(report.chunks, broker.sent.length);
  assert.ok(report.chunks >= 7);
  assert.equal(broker.refusals(), 0);
});

test('bounded sender: a record too large alone is dead-lettered in its place, truncated to fit', async () => {
  const broker = fakeBroker(16_384);
  const sender = createBoundedSender({ maxBytes: 16_000, service: 'incidents', dlqTopic: 'incidents.dlq' });
  const report = await sender.send(broker.send, [
    {
      topic: 'incidents',
      messages: [
        { key: 'a', value: bytes(100) },
        { key: 'b', value: bytes(40_000), headers: { h: 'v' } },
        { key: 'c', value: bytes(100) },
      ],
    },
  ]);
  const out = broker.records();
  assert.deepEqual(
    out.map((r) => [r.topic, r.message.key]),
    [
      ['incidents', 'a'],
      ['incidents.dlq', 'b'],
      ['incidents', 'c'],
    ],
  );
  const dl = out[1]!.message;
  assert.equal(dl.headers![DLQ_HEADER.reason], 'record.too_large');
  assert.equal(dl.headers![DLQ_HEADER.service], 'incidents');
  assert.equal(dl.headers![TOO_LARGE_HEADER.topic], 'incidents');
  assert.equal(dl.headers![TOO_LARGE_HEADER.originalSize], '40000');
  assert.equal(dl.headers![TOO_LARGE_HEADER.truncated], 'true');
  assert.equal(dl.headers!.h, 'v', 'the original headers are kept');
  assert.deepEqual(report, { records: 3, chunks: 3, deadLettered: 1, truncated: 1 }, 'the truncated dead letter fills a send of its own');
});

test('bounded sender: a dead letter too large is truncated further, not wrapped again', async () => {
  const broker = fakeBroker(8192);
  const sender = createBoundedSender({ maxBytes: 8000, service: 'ingest', dlqTopic: 'dlq' });
  await sender.send(broker.send, [{ topic: 'dlq', messages: [{ key: 'v', value: bytes(30_000), headers: { [DLQ_HEADER.reason]: 'payload.too_large' } }] }]);
  const [dl] = broker.records();
  assert.equal(dl!.topic, 'dlq');
  assert.equal(dl!.message.headers![DLQ_HEADER.reason], 'payload.too_large');
  assert.equal(dl!.message.headers![TOO_LARGE_HEADER.originalSize], '30000');
});

test('bounded sender: a broker limit below the budget halves it; a transaction (no reset) must be redone', async () => {
  const broker = fakeBroker(20_000);
  const sender = createBoundedSender({ maxBytes: 100_000, service: 'w', dlqTopic: 'dlq' });
  const input = [{ topic: 'features', messages: Array.from({ length: 200 }, (_, i) => ({ key: `v${i}`, value: bytes(900) })) }];
  await assert.rejects(sender.send(broker.send, input), (e: unknown) => e instanceof PitwallError && e.reason === 'send.too_large' && e.retriable);
  assert.ok(sender.budget() <= 50_000, `budget ${sender.budget()}`);
  // Each redone transaction starts with the lowered budget, until one goes through.
  let attempts = 1;
  let report;
  for (;;) {
    attempts++;
    try {
      report = await sender.send(broker.send, input);
      break;
    } catch (err) {
      assert.ok(err instanceof PitwallError && err.retriable);
      assert.ok(attempts < 5, 'converges');
    }
  }
  assert.ok(sender.budget() <= 20_000);
  assert.deepEqual(broker.records().slice(-200), toTopicRecords(input), 'the last attempt sent everything in order');
  assert.ok(report.chunks > 1);
});

test('bounded sender: with reset (idempotent producer) it re-splits in place and sends everything', async () => {
  const broker = fakeBroker(20_000);
  let resets = 0;
  const sender = createBoundedSender({ maxBytes: 100_000, service: 'ingest', dlqTopic: 'dlq' });
  const input = [{ topic: 'telemetry', messages: Array.from({ length: 200 }, (_, i) => ({ key: `v${i}`, value: bytes(900) })) }];
  const report = await sender.send(broker.send, input, { reset: async () => void resets++ });
  assert.deepEqual(broker.records(), toTopicRecords(input));
  assert.equal(resets, broker.refusals());
  assert.ok(resets >= 1 && sender.budget() <= 20_000);
  assert.equal(report.deadLettered, 0);
});

test('bounded sender: a single record refused at any size ends as a fitted dead letter, never a loop', async () => {
  // The broker's limit shrank to 3000 bytes; the budget still says 100 KB.
  const broker = fakeBroker(3000);
  const sender = createBoundedSender({ maxBytes: 100_000, service: 'scoring', dlqTopic: 'dlq' });
  const report = await sender.send(broker.send, [{ topic: 'scores', messages: [{ key: 'a', value: bytes(50_000) }] }]);
  const [dl] = broker.records();
  assert.equal(dl!.topic, 'dlq');
  assert.equal(dl!.message.headers![DLQ_HEADER.reason], 'record.too_large');
  assert.ok(broker.refusals() <= 6, `${broker.refusals()} refusals`);
  assert.equal(report.deadLettered, 1);
});

test('bounded sender: gives up with an error when nothing fits; other errors pass through untouched', async () => {
  const always = async (): Promise<void> => {
    throw Object.assign(new Error('too large'), { name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE' });
  };
  let calls = 0;
  const counting = async (): Promise<void> => {
    calls++;
    await always();
  };
  const sender = createBoundedSender({ maxBytes: 1_000_000, service: 's', dlqTopic: 'dlq' });
  await assert.rejects(sender.send(counting, [{ topic: 't', messages: [{ key: 'a', value: bytes(10) }] }]), (e: unknown) => e instanceof PitwallError && !e.retriable);
  assert.ok(calls <= 12, `${calls} sends`);
  const boom = new Error('broker down');
  await assert.rejects(
    createBoundedSender({ maxBytes: 10_000, service: 's', dlqTopic: 'dlq' }).send(async () => Promise.reject(boom), [{ topic: 't', messages: [{ key: 'a', value: 'x' }] }]),
    (e) => e === boom,
  );
});
