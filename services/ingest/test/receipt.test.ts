import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInputError, type AvroCodec, type ReceiptRecord } from '@pitwall/common';
import { handleReceipt, isReceiptTopic, parseReceipt } from '../src/handlers/receipt.js';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMITS = { maxPayloadBytes: 8192, maxFutureSkewMs: 60_000 };
const TOPIC = 'vehicles/car-0001/alerts/receipt';
const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

test('receipt topics are told apart from telemetry', () => {
  assert.equal(isReceiptTopic(TOPIC), true);
  assert.equal(isReceiptTopic('vehicles/car-0001/telemetry'), false);
  assert.equal(isReceiptTopic('vehicles/car-0001/alerts'), false);
  assert.equal(isReceiptTopic('vehicles/a/b/alerts/receipt'), false);
});

test('valid receipts: vehicle from the topic, optional fields defaulted', () => {
  const rows: [string, unknown, Omit<ReceiptRecord, 'vehicle_id' | 'ingested_at'>][] = [
    ['all fields', { incident_id: 'inc-1', revision: 3, received_at: NOW - 500 }, { incident_id: 'inc-1', revision: 3, received_at: NOW - 500 }],
    ['incident id only', { incident_id: 'inc-1' }, { incident_id: 'inc-1', revision: null, received_at: NOW }],
    ['nulls mean not given', { incident_id: 'inc-1', revision: null, received_at: null }, { incident_id: 'inc-1', revision: null, received_at: NOW }],
    ['revision 0', { incident_id: 'x', revision: 0 }, { incident_id: 'x', revision: 0, received_at: NOW }],
    ['payload vehicle ignored', { incident_id: 'x', vehicle_id: 'someone-else' }, { incident_id: 'x', revision: null, received_at: NOW }],
    ['car clock slightly ahead', { incident_id: 'x', received_at: NOW + 59_000 }, { incident_id: 'x', revision: null, received_at: NOW + 59_000 }],
  ];
  for (const [name, body, expected] of rows) {
    assert.deepEqual(parseReceipt(TOPIC, json(body), NOW, LIMITS), { vehicle_id: 'car-0001', ...expected, ingested_at: NOW }, name);
  }
});

test('malformed receipts are refused with a stable reason', () => {
  const rows: [string, string, Buffer, string][] = [
    ['wrong topic', 'vehicles/car-0001/alerts', json({ incident_id: 'x' }), 'topic.invalid'],
    ['bad vehicle id', 'vehicles/car 1/alerts/receipt', json({ incident_id: 'x' }), 'vehicle_id.invalid'],
    ['vehicle id ".."', 'vehicles/../alerts/receipt', json({ incident_id: 'x' }), 'vehicle_id.invalid'],
    ['too large', TOPIC, json({ incident_id: 'x'.repeat(9000) }), 'payload.too_large'],
    ['not json', TOPIC, Buffer.from('{"incident_id": '), 'payload.not_json'],
    ['not utf-8', TOPIC, Buffer.from([0x7b, 0xff, 0x7d]), 'payload.not_json'],
    ['array', TOPIC, json(['inc-1']), 'payload.not_object'],
    ['string', TOPIC, json('inc-1'), 'payload.not_object'],
    ['no incident id', TOPIC, json({ revision: 1 }), 'field.missing'],
    ['null incident id', TOPIC, json({ incident_id: null }), 'field.missing'],
    ['numeric incident id', TOPIC, json({ incident_id: 7 }), 'field.type'],
    ['empty incident id', TOPIC, json({ incident_id: '' }), 'field.invalid'],
    ['blank incident id', TOPIC, json({ incident_id: '   ' }), 'field.invalid'],
    ['over-long incident id', TOPIC, json({ incident_id: 'i'.repeat(257) }), 'field.invalid'],
    ['revision as string', TOPIC, json({ incident_id: 'x', revision: '3' }), 'field.type'],
    ['negative revision', TOPIC, json({ incident_id: 'x', revision: -1 }), 'field.not_integer'],
    ['fractional revision', TOPIC, json({ incident_id: 'x', revision: 1.5 }), 'field.not_integer'],
    ['received_at as string', TOPIC, json({ incident_id: 'x', received_at: '2026-11-23' }), 'field.type'],
    ['fractional received_at', TOPIC, json({ incident_id: 'x', received_at: NOW + 0.5 }), 'field.not_integer'],
    ['received_at in seconds', TOPIC, json({ incident_id: 'x', received_at: Math.floor(NOW / 1000) }), 'ts.out_of_range'],
    ['received_at far ahead', TOPIC, json({ incident_id: 'x', received_at: NOW + 61_000 }), 'ts.out_of_range'],
  ];
  for (const [name, topic, payload, reason] of rows) {
    assert.throws(
      () => parseReceipt(topic, payload, NOW, LIMITS),
      (err: unknown) => err instanceof InvalidInputError && err.reason === reason,
      `${name}: expected ${reason}`,
    );
  }
});

const fakeCodec: AvroCodec<ReceiptRecord> = {
  schemaId: 7,
  encode: (r) => Buffer.from(JSON.stringify(r)),
  decode: async (b) => JSON.parse(b.toString()) as ReceiptRecord,
  writerSchema: () => ({ type: 'record', name: 'Receipt', fields: [] }),
};
const DEPS = { service: 'ingest', codec: fakeCodec, topics: { receipts: 'vehicle.receipts', dlq: 'vehicle.telemetry.dlq' }, limits: LIMITS };

test('handler: a receipt goes to the receipts topic keyed by vehicle', () => {
  const out = handleReceipt(DEPS, TOPIC, json({ incident_id: 'inc-1', revision: 2 }), NOW);
  assert.equal(out.kind, 'record');
  assert.equal(out.record.topic, 'vehicle.receipts');
  assert.equal(out.record.key, 'car-0001');
  assert.deepEqual(JSON.parse(out.record.value.toString()), { vehicle_id: 'car-0001', incident_id: 'inc-1', revision: 2, received_at: NOW, ingested_at: NOW });
  assert.equal(out.record.headers, undefined);
});

test('handler: a bad receipt is dead-lettered with raw bytes, reason and origin', () => {
  const raw = Buffer.from('{"incident_id": ""}');
  const out = handleReceipt(DEPS, TOPIC, raw, NOW);
  assert.equal(out.kind, 'dead-letter');
  assert.equal(out.record.topic, 'vehicle.telemetry.dlq');
  assert.equal(out.record.key, 'car-0001');
  assert.deepEqual(out.record.value, raw);
  assert.equal(out.record.headers!['pitwall.dlq.reason'], 'field.invalid');
  assert.equal(out.record.headers!['pitwall.dlq.service'], 'ingest');
  assert.equal(out.record.headers!['pitwall.source.mqtt.topic'], TOPIC);
});
