/**
 * Message size limits on a private Mosquitto running the committed config (support/mosquitto.ts;
 * the shared broker may still run an older config until it is restarted):
 *   - a 1 MB payload, over ingest's limit and under the broker's max_packet_size, reaches ingest and
 *     is dead-lettered as payload.too_large, for an MQTT 3.1.1 and an MQTT 5 publisher alike, and
 *     both publishers' callbacks complete (no success PUBACK for a dropped message, no lost callback);
 *   - a reading over a broker's advertised maximum packet size fails at once in the simulator (mqtt.js
 *     would send it, be disconnected, and resend it on every reconnect without calling back);
 *   - ingest refuses to start on a broker whose maximum packet size is below INGEST_MAX_PAYLOAD_BYTES.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { DLQ_HEADER, SENSORS, serverMaximumPacketSize, silentLogger } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { createFleet, createSimulator } from '@pitwall/simulator';
import { isolatedEnv, runId, startService, waitReady, kafkaClientConfig } from './support/stack.js';
import { startPrivateMosquitto } from './support/mosquitto.js';
import { asGateway } from './support/identities.js';

/** Resolves with the publish callback's error (or null); rejects if there is none within `ms`. */
function publishOutcome(client: MqttClient, topic: string, payload: Buffer | string, ms: number): Promise<Error | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no publish callback for ${topic} within ${ms} ms`)), ms);
    client.publish(topic, payload, { qos: 1 }, (err) => {
      clearTimeout(timer);
      resolve(err ?? null);
    });
  });
}

/** `p`, or a rejection naming `what` after `ms`. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function reading(ts: number): string {
  const r: Record<string, number> = { ts };
  for (const s of SENSORS) r[s.name] = s.kind === 'int' ? 230 : 12.5;
  return JSON.stringify(r);
}

test('a 1 MB payload from MQTT 3.1.1 and MQTT 5 publishers is dead-lettered as payload.too_large and both callbacks complete', { timeout: 180_000 }, async (t) => {
  const id = runId();
  const broker = await startPrivateMosquitto(id);
  t.after(() => broker.stop());
  const env: Record<string, string> = { ...isolatedEnv(id), MQTT_URL: broker.url };
  const ingest = await startService('ingest', env, `mqtt-limits-${id}`);
  t.after(async () => void (await ingest.stop()));
  await waitReady([ingest]);

  const big = Buffer.alloc(1_000_000, 0x7b);
  const outcomes: Record<string, { big: Error | null; small: Error | null; ms: number }> = {};
  for (const protocolVersion of [4, 5] as const) {
    const client = await mqtt.connectAsync(broker.url, { protocolVersion, clientId: `e2e-big-v${protocolVersion}-${id}`, reconnectPeriod: 500, ...(await asGateway(broker.url)) });
    t.after(() => client.end(true));
    if (protocolVersion === 5) assert.equal(serverMaximumPacketSize(client), 2 * 1024 * 1024, 'CONNACK advertises max_packet_size');
    const started = Date.now();
    const bigOutcome = await publishOutcome(client, `vehicles/big-v${protocolVersion}-${id}/telemetry`, big, 20_000);
    const ms = Date.now() - started;
    // The publisher keeps working: a normal reading right after it.
    const smallOutcome = await publishOutcome(client, `vehicles/ok-v${protocolVersion}-${id}/telemetry`, reading(Date.now()), 20_000);
    outcomes[`v${protocolVersion}`] = { big: bigOutcome, small: smallOutcome, ms };
  }
  for (const [v, o] of Object.entries(outcomes)) {
    assert.equal(o.big, null, `${v}: the 1 MB publish is acknowledged without error (${o.big?.message})`);
    assert.equal(o.small, null, `${v}: a normal reading after it is acknowledged`);
  }

  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const dlqReader = await collect(kafka, { topic: env.TOPIC_TELEMETRY_DLQ!, maxBytesPerPartition: 4 * 1024 * 1024 });
  const telemetryReader = await collect(kafka, { topic: env.TOPIC_TELEMETRY!, maxBytesPerPartition: 4 * 1024 * 1024 });
  const byKey = (records: readonly { key: string | null }[]): Set<string> => new Set(records.map((r) => r.key ?? ''));
  try {
    await Promise.all([dlqReader.waitFor((rs) => byKey(rs).size >= 2, 60_000, 'both dead letters', 250), telemetryReader.waitFor((rs) => byKey(rs).size >= 2, 60_000, 'both readings', 250)]);
  } finally {
    await dlqReader.stop();
    await telemetryReader.stop();
  }
  const dlq = new Map(dlqReader.records.map((r) => [r.key ?? '', { reason: r.headers[DLQ_HEADER.reason], bytes: r.value?.length ?? 0, originalSize: r.headers['pitwall.dlq.original_size'] }]));
  const telemetry = byKey(telemetryReader.records);
  t.diagnostic(`publish of 1 MB acknowledged after ${outcomes.v4!.ms} ms (MQTT 3.1.1) and ${outcomes.v5!.ms} ms (MQTT 5); dead letters ${JSON.stringify([...dlq])}`);
  for (const v of [4, 5]) {
    assert.equal(dlq.get(`big-v${v}-${id}`)?.reason, 'payload.too_large', `v${v}: dead-lettered as payload.too_large`);
    assert.ok(telemetry.has(`ok-v${v}-${id}`), `v${v}: the normal reading after it reached the telemetry topic`);
  }
});

test("over a broker's advertised maximum packet size the simulator fails a reading at once; ingest refuses to start below its own limit", { timeout: 120_000 }, async (t) => {
  const id = runId();
  // A broker with a small limit: readings (~600 bytes) do not fit, and neither does ingest's limit.
  const broker = await startPrivateMosquitto(id, { extra: ['max_packet_size 400'] });
  t.after(() => broker.stop());

  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `e2e-cars-${id}`, reconnectPeriod: 500, ...(await asGateway(broker.url)) });
  t.after(() => client.end(true));
  assert.equal(serverMaximumPacketSize(client), 400);
  const sim = createSimulator({
    client,
    fleet: createFleet({ cars: 3, seed: 1 }),
    log: silentLogger,
    timeScale: 1000,
    durationMs: 3000,
    maxPacketSize: () => serverMaximumPacketSize(client),
  });
  sim.start();
  await within('the simulator settling readings the broker cannot take', sim.done, 15_000);
  assert.deepEqual(sim.stats(), { published: 0, ticks: 3, failed: 9, inFlight: 0 });
  assert.equal(await publishOutcome(client, `vehicles/x-${id}/alerts/receipt`, '{"incident_id":"i"}', 10_000), null, 'the client still works');

  // Ingest's default limit (8 KiB) needs the broker to take larger packets, so they can be dead-lettered.
  const ingest = await startService('ingest', { ...isolatedEnv(id), MQTT_URL: broker.url }, `mqtt-limits-small-${id}`);
  const code = await within('ingest exiting', ingest.exited, 60_000).catch(async (err: unknown) => {
    await ingest.kill();
    throw err;
  });
  assert.equal(code, 1, 'ingest exits 1');
  assert.match(readFileSync(ingest.logFile, 'utf8'), /"variable":"INGEST_MAX_PAYLOAD_BYTES"/);
});
