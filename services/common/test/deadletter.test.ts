import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deadLetterHeaders, dispose, DLQ_HEADER, undecodableRecord } from '../src/deadletter.js';
import { InvalidInputError, TransientError } from '../src/errors.js';

test('dispose: retriable errors are retried, invalid input is dead-lettered with its reason', () => {
  assert.deepEqual(dispose(new TransientError('broker.down', 'x')), { action: 'retry' });
  assert.deepEqual(dispose(new InvalidInputError('payload.not_json', 'bad')), { action: 'dead-letter', reason: 'payload.not_json', message: 'bad' });
  assert.deepEqual(dispose(Object.assign(new Error('nope'), { retriable: false })), { action: 'dead-letter', reason: 'unexpected', message: 'nope' });
});

test('dead-letter headers name the reason, the service, the time and the source', () => {
  const h = deadLetterHeaders('ingest', { reason: 'field.missing', message: 'field "speed" is missing' }, { 'mqtt.topic': 'vehicles/a/telemetry' }, 42);
  assert.deepEqual(h, {
    [DLQ_HEADER.reason]: 'field.missing',
    [DLQ_HEADER.message]: 'field "speed" is missing',
    [DLQ_HEADER.service]: 'ingest',
    [DLQ_HEADER.time]: '42',
    'pitwall.source.mqtt.topic': 'vehicles/a/telemetry',
  });
});

test('an undecodable Kafka record keeps its bytes and says where it came from', () => {
  const rec = undecodableRecord('windowing', new InvalidInputError('avro.framing', 'not framed'), { key: Buffer.from('k'), value: Buffer.from([1]), offset: '7' }, { topic: 't', partition: 2 });
  assert.deepEqual(rec.value, Buffer.from([1]));
  assert.equal(rec.headers[DLQ_HEADER.reason], 'avro.framing');
  assert.equal(rec.headers['pitwall.source.offset'], '7');
  assert.equal(rec.headers['pitwall.source.partition'], '2');
  assert.equal(undecodableRecord('x', new Error('boom'), { key: null, value: null, offset: '0' }, { topic: 't', partition: 0 }).headers[DLQ_HEADER.reason], 'avro.decode');
});
