/**
 * End to end on the real brokers, nothing mocked: a simulated fleet publishes over MQTT, the four
 * services run as real processes, and the test listens where a car and an operator would.
 *
 * - healthy cars plus one car with an injected failure -> an alert for that car arrives on
 *   vehicles/{id}/alerts through a real MQTT subscription, and on the operators' topic;
 * - the healthy cars raise no alert during the run;
 * - malformed payloads land in the telemetry dead-letter topic with their reason and raw bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { createFleet, createSimulator } from '@pitwall/simulator';
import { connectMqtt, mqttOptions, silentLogger } from '@pitwall/common';
import { INFRA, isolatedEnv, runId, startService, waitFor, waitReady, type ServiceProcess } from './support/stack.js';

const id = runId();
// Small fetches make windowing resume mid-window on every batch, as it does under load.
const env = { ...isolatedEnv(id), WINDOWING_FETCH_MAX_BYTES: '4096' };
const prefix = `e2e${id}`;
const FAILING = `${prefix}-0004`;
const CARS = 12;

describe('pipeline end to end', { timeout: 300_000 }, () => {
  const services: ServiceProcess[] = [];
  let listener: MqttClient;
  const alerts: { topic: string; body: Record<string, unknown> }[] = [];

  before(async () => {
    for (const name of ['ingest', 'windowing', 'scoring', 'dispatch']) services.push(await startService(name, env, `pipeline-${id}`));
    await waitReady(services, 90_000);
    listener = await connectMqtt(INFRA.mqtt, mqttOptions({ mqtt: { url: INFRA.mqtt, username: undefined, password: undefined } }, { clientId: `e2e-listener-${id}` }), silentLogger);
    listener.on('message', (topic, payload) => alerts.push({ topic, body: JSON.parse(payload.toString()) }));
    await listener.subscribeAsync([`vehicles/+/alerts`, env.DISPATCH_FLEET_TOPIC!], { qos: 1 });
  });

  after(async () => {
    await listener?.endAsync();
    const codes = await Promise.all(services.map((s) => s.stop()));
    assert.deepEqual(codes, services.map(() => 0), 'every service shuts down cleanly on SIGTERM');
  });

  test('a failing car gets an alert over MQTT; healthy cars get none', async () => {
    const start = Date.now();
    const fleet = createFleet({
      cars: CARS,
      seed: 7,
      idPrefix: prefix,
      failures: [{ vehicleId: FAILING, mode: 'coolant_overheat', onsetTs: start + 30_000, rampMs: 30_000 }],
    });
    const client = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-sim-${id}` }, silentLogger);
    // 4 minutes of event time at 1 Hz per car, compressed 10x.
    const sim = createSimulator({ client, fleet, log: silentLogger, ratePerCarHz: 1, timeScale: 10, startTs: start, durationMs: 240_000 });
    sim.start();
    const carAlert = await waitFor(
      `an alert on vehicles/${FAILING}/alerts`,
      () => alerts.find((a) => a.topic === `vehicles/${FAILING}/alerts`),
      120_000,
    );
    await sim.done;
    await client.endAsync();
    // Let the last closed windows flow through before judging the healthy cars.
    await new Promise((r) => setTimeout(r, 5_000));

    assert.equal(carAlert.body.vehicleId, FAILING);
    assert.equal((carAlert.body.model as { name: string }).name, 'pitwall-ae');
    assert.ok((carAlert.body.score as number) > (carAlert.body.threshold as number));
    const contributors = carAlert.body.contributors as { sensor: string; share: number }[];
    assert.ok(contributors.length >= 1 && contributors.length <= 3);
    assert.ok(contributors.some((c) => c.sensor === 'coolant_temp'), `coolant_temp among contributors: ${JSON.stringify(contributors)}`);
    assert.ok((carAlert.body.windowEnd as number) > start + 30_000, 'no alert for a window that ended before the failure onset');
    const fleetCopy = alerts.find((a) => a.topic === env.DISPATCH_FLEET_TOPIC && a.body.alertId === carAlert.body.alertId);
    assert.ok(fleetCopy, 'operators receive the same alert on the fleet topic');

    const ours = alerts.filter((a) => String(a.body.vehicleId).startsWith(prefix));
    const healthy = ours.filter((a) => a.body.vehicleId !== FAILING);
    assert.deepEqual(
      healthy.map((a) => `${a.body.vehicleId} score ${a.body.score} window ${a.body.windowStart}`),
      [],
      'healthy cars raised no alert',
    );
  });

  test('malformed telemetry lands in the dead-letter topic with its reason and raw bytes', async () => {
    const client = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-bad-${id}` }, silentLogger);
    const cases: [string, Buffer, string][] = [
      [`vehicles/${prefix}-bad1/telemetry`, Buffer.from('{"ts": 1, broken'), 'payload.not_json'],
      [`vehicles/${prefix}-bad2/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), speed: 'fast' })), 'field.missing'],
      [`vehicles/${prefix}-bad3/telemetry`, Buffer.from('[1,2,3]'), 'payload.not_object'],
    ];
    for (const [topic, payload] of cases) await client.publishAsync(topic, payload, { qos: 1 });
    await client.endAsync();

    const kafka = new Kafka({ clientId: `e2e-${id}`, brokers: [INFRA.kafka], logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `e2e.${id}.dlq-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic: env.TOPIC_TELEMETRY_DLQ!, fromBeginning: true });
    const seen = new Map<string, { value: Buffer; headers: Record<string, string> }>();
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        seen.set(headers['pitwall.source.mqtt.topic']!, { value: message.value!, headers });
      },
    });
    try {
      await waitFor('three dead letters', () => (seen.size >= cases.length ? true : undefined), 60_000);
    } finally {
      await consumer.disconnect();
    }
    for (const [topic, payload, reason] of cases) {
      const dl = seen.get(topic);
      assert.ok(dl, `dead letter for ${topic}`);
      assert.equal(dl.headers['pitwall.dlq.reason'], reason, topic);
      assert.equal(dl.headers['pitwall.dlq.service'], 'ingest');
      assert.ok(dl.headers['pitwall.dlq.message']!.length > 0);
      assert.deepEqual(dl.value, payload, 'raw bytes are kept');
    }
  });
});
