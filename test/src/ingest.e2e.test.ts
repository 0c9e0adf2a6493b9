/**
 * Ingest's delivery guarantee on the real brokers: kill -9 of ingest while telemetry is streaming
 * loses nothing. Every reading published at QoS 1 reaches vehicle.telemetry at least once, because
 * ingest acknowledges MQTT messages only after Kafka acknowledged them and its persistent session
 * keeps the rest for redelivery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { connectMqtt, createAvroCodec, defaultSchemasDir, loadSchemaFile, SENSORS, silentLogger, type TelemetryRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, runId, startService, waitFor, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

test('kill -9 of ingest mid-stream loses no reading (at-least-once)', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const env: Record<string, string> = { ...isolatedEnv(id), INGEST_SESSION_EXPIRY_S: '120', INGEST_LINGER_MS: '20' };
  const VEHICLES = 10;
  // The cars publish until the kill is behind them and then this many more rounds, so the kill
  // lands mid-stream however fast this machine publishes or ingest forwards.
  const ROUNDS_AFTER_KILL = 200;
  const MAX_ROUNDS = 3_000; // readings stamped up to 50 min after t0, an hour ago: none in the future

  let ingest = await startService('ingest', env, `ingest-kill-${id}`);
  await waitReady([ingest]);

  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  const t0 = Date.now() - 3_600_000;
  let published = 0;
  let killedAtRound: number | undefined;
  const publishAll = (async () => {
    for (let i = 0; i < MAX_ROUNDS && (killedAtRound === undefined || i < killedAtRound + ROUNDS_AFTER_KILL); i++) {
      const batch: Promise<unknown>[] = [];
      for (let v = 0; v < VEHICLES; v++) {
        const reading: Record<string, number> = { ts: t0 + i * 1000 };
        for (const s of SENSORS) reading[s.name] = s.kind === 'int' ? 230 : 10 + v + i / 100;
        batch.push(publisher.publishAsync(`vehicles/k${id}-${v}/telemetry`, JSON.stringify(reading), { qos: 1 }));
      }
      await Promise.all(batch);
      published += VEHICLES;
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  })();

  // Kill ingest hard while the stream is flowing (it has forwarded some readings to Kafka and the
  // cars are still publishing), then start it again with the same session.
  const producedSoFar = async (): Promise<number> =>
    Number(/^pitwall_ingest_records_produced_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text())?.[1] ?? 0);
  const producedAtKill = await waitFor('ingest to forward the first readings', async () => (await producedSoFar()) || undefined, 30_000, 20);
  const publishedAtKill = published;
  killedAtRound = publishedAtKill / VEHICLES;
  await ingest.kill();
  t.diagnostic(`ingest killed with SIGKILL after forwarding ${producedAtKill} readings, with ${publishedAtKill} acknowledged by the broker`);
  await new Promise((r) => setTimeout(r, 500));
  ingest = await startService('ingest', env, `ingest-kill-${id}-restart`);
  await waitReady([ingest]);
  await publishAll;
  await publisher.endAsync();
  const total = published;
  assert.ok(publishedAtKill < total, `the kill came while the cars were still publishing (${publishedAtKill} of ${total})`);

  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const codec = await createAvroCodec<TelemetryRecord>(adminSchemaStore(), `${env.TOPIC_TELEMETRY!}-value`, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1));
  const telemetry = await collect(kafka, { topic: env.TOPIC_TELEMETRY!, decode: codec });
  const distinct = (): Set<string> => new Set(telemetry.values().map((r) => `${r.vehicle_id}@${r.ts}`));
  try {
    await telemetry.waitFor(() => distinct().size >= total, 60_000, `${total} distinct readings`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; got ${distinct().size} distinct readings in ${telemetry.records.length} records`, { cause: err });
  } finally {
    await telemetry.stop();
  }
  const seen = distinct();
  const records = telemetry.records.length;
  // The broker's drop counter reaches ingest (its ACL allows it), so broker-side loss would show.
  const dropped = await waitFor(
    'pitwall_mqtt_broker_dropped_messages on /metrics',
    async () => /^pitwall_mqtt_broker_dropped_messages (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text())?.[1],
    30_000,
  );
  t.diagnostic(`the broker reports ${dropped} dropped messages since it started`);
  assert.equal(await ingest.stop(), 0);
  t.diagnostic(`published ${total}, distinct in Kafka ${seen.size}, records ${records} (duplicates from redelivery: ${records - seen.size})`);
  assert.equal(seen.size, total);
});
