/**
 * Readiness through a 20 s Kafka outage, on a private Kafka (support/kafka.ts) with the shared
 * registry and Mosquitto: windowing (a consumer) and ingest (a producer) answer /readyz 503 naming
 * the failing check while Kafka is down, and 200 again afterwards without being restarted; ingest
 * then forwards readings again.
 *
 * Back-pressure: cars keep publishing during the outage. Ingest holds at most its receive maximum
 * (INGEST_RECEIVE_MAXIMUM) unacknowledged, the rest waits in Mosquitto, and once Kafka is back every
 * acknowledged reading arrives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { createTopicCodec, SENSORS, type TelemetryRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, runId, startService, waitFor, waitReady, type ServiceProcess, kafkaClientConfig } from './support/stack.js';
import { startPrivateKafka } from './support/kafka.js';
import { asGateway } from './support/identities.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const RECEIVE_MAXIMUM = 200;
const BURST = 3_000;

/** Ingest's pitwall_ingest_mqtt_unacked_messages, or undefined when /metrics does not answer. */
async function unacked(s: ServiceProcess): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${s.healthPort}/metrics`)).text();
    const m = /^pitwall_ingest_mqtt_unacked_messages (\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function readyz(s: ServiceProcess): Promise<{ at: number; status: number; failing: string[] }> {
  try {
    const res = await fetch(`http://127.0.0.1:${s.healthPort}/readyz`);
    const body = (await res.json()) as { failing?: string[] };
    return { at: Date.now(), status: res.status, failing: body.failing ?? [] };
  } catch {
    return { at: Date.now(), status: 0, failing: ['unreachable'] };
  }
}

test('a 20 s Kafka outage: /readyz 503 naming the check while it lasts, 200 afterwards without a restart', { timeout: 420_000 }, async (t) => {
  const id = runId();
  const kafka = await startPrivateKafka(id);
  t.after(() => kafka.stop());
  const env: Record<string, string> = { ...isolatedEnv(id), KAFKA_BROKERS: kafka.brokers, PROGRESS_STALL_MS: '10000', INGEST_RECEIVE_MAXIMUM: String(RECEIVE_MAXIMUM) };
  const services = [await startService('windowing', env, `kafka-outage-${id}`), await startService('ingest', env, `kafka-outage-${id}`)];
  t.after(async () => {
    for (const s of services) await s.stop();
  });
  await waitReady(services, 120_000);

  const ingest = services[1]!;
  const cars = await mqtt.connectAsync(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-outage-burst-${id}`, ...(await asGateway(INFRA.mqtt)) });
  t.after(() => cars.end(true));

  await kafka.kill();
  const killedAt = Date.now();
  // BURST readings from 50 cars, each acknowledged by Mosquitto, while ingest cannot write one.
  const burst: Promise<unknown>[] = [];
  for (let i = 0; i < BURST; i++) {
    const reading: Record<string, number> = { ts: killedAt - 60_000 + i };
    for (const s of SENSORS) reading[s.name] = s.kind === 'int' ? 230 : 12.5;
    burst.push(cars.publishAsync(`vehicles/burst-${id}-${i % 50}/telemetry`, JSON.stringify(reading), { qos: 1 }));
  }
  await Promise.all(burst);
  const unackedSeen: number[] = [];
  const probes = new Map<string, Awaited<ReturnType<typeof readyz>>[]>(services.map((s) => [s.name, []]));
  while (Date.now() - killedAt < 20_000) {
    for (const s of services) probes.get(s.name)!.push(await readyz(s));
    const held = await unacked(ingest);
    if (held !== undefined) unackedSeen.push(held);
    await sleep(500);
  }
  t.diagnostic(`during the outage ingest held ${Math.min(...unackedSeen)}..${Math.max(...unackedSeen)} unacknowledged readings (receive maximum ${RECEIVE_MAXIMUM}; ${BURST} published)`);
  assert.ok(unackedSeen.length > 10, 'ingest served /metrics during the outage');
  assert.ok(Math.max(...unackedSeen) <= RECEIVE_MAXIMUM, `ingest never holds more than INGEST_RECEIVE_MAXIMUM (${RECEIVE_MAXIMUM}) unacknowledged`);
  assert.equal(unackedSeen.at(-1), RECEIVE_MAXIMUM, 'ingest took exactly its window: the rest waits in the broker');
  await kafka.up();
  const upAt = Date.now();
  const readyAfter = new Map<string, number>();
  await Promise.all(
    services.map(async (s) => {
      await waitFor(`${s.name} ready again (log: ${s.logFile})`, async () => ((await readyz(s)).status === 200 ? true : undefined), 120_000, 250);
      readyAfter.set(s.name, Date.now() - upAt);
    }),
  );

  for (const s of services) {
    const during = probes.get(s.name)!;
    const firstDown = during.find((p) => p.status === 503);
    const failing = [...new Set(during.flatMap((p) => (p.status === 503 ? p.failing : [])))];
    t.diagnostic(
      `${s.name}: 503 from ${firstDown ? firstDown.at - killedAt : '—'} ms after the kill, ${during.filter((p) => p.status === 503).length}/${during.length} probes 503 ` +
        `(failing: ${failing.join(', ')}); ready ${readyAfter.get(s.name)} ms after Kafka was back (${upAt - killedAt} ms after the kill)`,
    );
    assert.equal(s.proc.exitCode, null, `${s.name} is still the same process`);
    assert.ok(firstDown && firstDown.at - killedAt < 12_000, `${s.name} reports not-ready within 12 s of the kill`);
    assert.ok(
      during.filter((p) => p.at - killedAt > 12_000).every((p) => p.status === 503),
      `${s.name} stays not-ready while Kafka is down`,
    );
    assert.ok(failing.includes('kafka'), `${s.name} names the kafka check`);
  }

  // Every acknowledged reading of the burst arrives once Kafka is back, and ingest forwards new readings.
  const car = `outage-${id}`;
  const client = await mqtt.connectAsync(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-outage-${id}`, ...(await asGateway(INFRA.mqtt)) });
  t.after(() => client.end(true));
  const reading: Record<string, number> = { ts: Date.now() };
  for (const s of SENSORS) reading[s.name] = s.kind === 'int' ? 230 : 12.5;
  await client.publishAsync(`vehicles/${car}/telemetry`, JSON.stringify(reading), { qos: 1 });
  const reader = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(kafka.brokers), logLevel: logLevel.NOTHING });
  const codec = await createTopicCodec<TelemetryRecord>(adminSchemaStore(), env.TOPIC_TELEMETRY!, 'telemetry', 2);
  // The burst's readings and the one after the outage; windowing's idle markers (no value, no key) left out.
  const telemetry = await collect(reader, { topic: env.TOPIC_TELEMETRY!, decode: codec, filter: (r) => r.key === car || r.key?.startsWith(`burst-${id}-`) === true });
  const burstRecords = () => telemetry.records.filter((r) => r.key !== car);
  const burstDistinct = (): Set<string> => new Set(burstRecords().map((r) => `${r.key}@${r.value.ts}`));
  try {
    await telemetry.waitFor((rs) => rs.some((r) => r.key === car), 60_000, 'the reading published after the outage');
    await telemetry.waitFor(() => burstDistinct().size >= BURST, 120_000, `all ${BURST} readings of the burst`);
  } finally {
    await telemetry.stop();
  }
  const burstSeen = burstDistinct();
  const burstCount = burstRecords().length;
  t.diagnostic(`burst: ${burstSeen.size} of ${BURST} distinct readings in Kafka, ${burstCount - burstSeen.size} duplicates`);
  assert.equal(burstSeen.size, BURST, 'no acknowledged reading lost');
  for (const s of services) assert.equal(await s.stop(), 0, `${s.name} stops cleanly on SIGTERM`);
});
