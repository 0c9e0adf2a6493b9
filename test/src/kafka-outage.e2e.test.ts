/**
 * Readiness through a 20 s Kafka outage, on a private Kafka (support/kafka.ts) with the shared
 * registry and Mosquitto: windowing (a consumer) and ingest (a producer) answer /readyz 503 naming
 * the failing check while Kafka is down, and 200 again afterwards without being restarted; ingest
 * then forwards readings again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { SENSORS } from '@pitwall/common';
import { INFRA, isolatedEnv, runId, startService, waitFor, waitReady, type ServiceProcess, kafkaClientConfig } from './support/stack.js';
import { startPrivateKafka } from './support/kafka.js';
import { asGateway } from './support/identities.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  const env: Record<string, string> = { ...isolatedEnv(id), KAFKA_BROKERS: kafka.brokers, PROGRESS_STALL_MS: '10000' };
  const services = [await startService('windowing', env, `kafka-outage-${id}`), await startService('ingest', env, `kafka-outage-${id}`)];
  t.after(async () => {
    for (const s of services) await s.stop();
  });
  await waitReady(services, 120_000);

  await kafka.kill();
  const killedAt = Date.now();
  const probes = new Map<string, Awaited<ReturnType<typeof readyz>>[]>(services.map((s) => [s.name, []]));
  while (Date.now() - killedAt < 20_000) {
    for (const s of services) probes.get(s.name)!.push(await readyz(s));
    await sleep(500);
  }
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
    assert.ok(during.filter((p) => p.at - killedAt > 12_000).every((p) => p.status === 503), `${s.name} stays not-ready while Kafka is down`);
    assert.ok(failing.includes('kafka'), `${s.name} names the kafka check`);
  }

  // Ingest forwards readings again.
  const car = `outage-${id}`;
  const client = await mqtt.connectAsync(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-outage-${id}`, ...(await asGateway(INFRA.mqtt)) });
  t.after(() => client.end(true));
  const reading: Record<string, number> = { ts: Date.now() };
  for (const s of SENSORS) reading[s.name] = s.kind === 'int' ? 230 : 12.5;
  await client.publishAsync(`vehicles/${car}/telemetry`, JSON.stringify(reading), { qos: 1 });
  const reader = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(kafka.brokers), logLevel: logLevel.NOTHING });
  const consumer = reader.consumer({ groupId: `e2e.${id}.reader` });
  let found = false;
  await consumer.connect();
  await consumer.subscribe({ topic: env.TOPIC_TELEMETRY!, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void (found ||= message.key?.toString() === car) });
  try {
    await waitFor('the reading published after the outage in Kafka', () => (found ? true : undefined), 60_000);
  } finally {
    await consumer.disconnect();
  }
  for (const s of services) assert.equal(await s.stop(), 0, `${s.name} stops cleanly on SIGTERM`);
});
