/**
 * Car receipts through ingest on the real brokers: a car publishes on
 * vehicles/{id}/alerts/receipt; a valid receipt lands on vehicle.receipts as an Avro ReceiptRecord
 * keyed by the vehicle of the topic (not of the payload), a malformed one in the ingest dead-letter
 * topic with its reason and raw bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { connectMqtt, createAvroCodec, defaultSchemasDir, loadSchemaFile, silentLogger, type ReceiptRecord } from '@pitwall/common';
import { collect, type Collector } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, runId, startService, waitReady } from './support/stack.js';
import { tlsAs } from './support/identities.js';

test('receipts reach vehicle.receipts; malformed ones the dead-letter topic', { timeout: 180_000 }, async () => {
  const id = runId();
  const env = isolatedEnv(id);
  const car = `r${id}-1`;
  const ingest = await startService('ingest', env, `receipts-${id}`);
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const readers: Collector<unknown>[] = [];
  try {
    await waitReady([ingest]);
    const client = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-car-${id}`, ...(await tlsAs(INFRA.mqtt, 'car', car)) }, silentLogger);
    const receivedAt = Date.now() - 2_000;
    const good = { incident_id: `inc-${id}`, revision: 3, received_at: receivedAt, vehicle_id: 'not-me' };
    const bare = { incident_id: `inc-${id}-bare` };
    const bad = Buffer.from(JSON.stringify({ incident_id: '', revision: 1 }));
    await client.publishAsync(`vehicles/${car}/alerts/receipt`, JSON.stringify(good), { qos: 1 });
    await client.publishAsync(`vehicles/${car}/alerts/receipt`, JSON.stringify(bare), { qos: 1 });
    await client.publishAsync(`vehicles/${car}/alerts/receipt`, bad, { qos: 1 });
    await client.endAsync();

    const codec = await createAvroCodec<ReceiptRecord>(adminSchemaStore(), `${env.TOPIC_RECEIPTS}-value`, await loadSchemaFile(defaultSchemasDir(), 'receipt', 1));
    const receiptReader = await collect(kafka, { topic: env.TOPIC_RECEIPTS, decode: codec });
    readers.push(receiptReader);
    const deadReader = await collect(kafka, { topic: env.TOPIC_TELEMETRY_DLQ });
    readers.push(deadReader);
    const [receipts, dead] = await Promise.all([receiptReader.waitFor(2, 60_000, 'two receipts'), deadReader.waitFor(1, 60_000, 'one dead letter')]);

    const full = receipts.find((r) => r.value.incident_id === good.incident_id)!;
    assert.equal(full.key, car, 'keyed by the vehicle of the topic');
    assert.equal(full.value.vehicle_id, car, 'vehicle from the topic, not the payload');
    assert.equal(full.value.revision, 3);
    assert.equal(full.value.received_at, receivedAt);
    assert.ok(full.value.ingested_at >= receivedAt);
    const minimal = receipts.find((r) => r.value.incident_id === bare.incident_id)!;
    assert.equal(minimal.value.revision, null);
    assert.equal(minimal.value.received_at, minimal.value.ingested_at, 'no car clock: the ingest clock');

    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.key, car);
    assert.deepEqual(dead[0]!.value, bad, 'raw bytes are kept');
    assert.equal(dead[0]!.headers['pitwall.dlq.reason'], 'field.invalid');
    assert.equal(dead[0]!.headers['pitwall.dlq.service'], 'ingest');
    assert.equal(dead[0]!.headers['pitwall.source.mqtt.topic'], `vehicles/${car}/alerts/receipt`);
  } finally {
    await Promise.all(readers.map((r) => r.stop()));
    assert.equal(await ingest.stop(), 0, 'ingest stops cleanly');
  }
});
