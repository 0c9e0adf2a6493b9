/**
 * A broker kill -9 and restart, for every broker implementation (support/brokers.ts: Mosquitto with
 * the committed config, HiveMQ CE with infra/hivemq), on a private broker,
 * with ingest as a real process and the simulator's cars publishing QoS 1 readings over a real
 * mqtt.js client. Every reading whose publish got a PUBACK reaches vehicle.telemetry, ingest keeps
 * receiving after the restart, its /readyz is 503 while the broker is away, and the cars'
 * subscriptions to their alerts come back.
 *
 * The broker is killed only after it has saved ingest's session (autosave_interval): the case where
 * it restores the session without ingest's shared subscription and says sessionPresent=true, so
 * mqtt.js does not subscribe again by itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { createAvroCodec, defaultSchemasDir, loadSchemaFile, silentLogger, type TelemetryRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { createCarInbox, createFleet, createSimulator, type PublishClient } from '@pitwall/simulator';
import { adminSchemaStore, isolatedEnv, kafkaClientConfig, runId, startService, waitFor, waitReady } from './support/stack.js';
import { BROKERS } from './support/brokers.js';
import { asGateway, tlsAs } from './support/identities.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Probe {
  at: number;
  status: number;
  failing: string[];
}

async function readyz(port: number): Promise<Probe> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    const body = (await res.json()) as { failing?: string[] };
    return { at: Date.now(), status: res.status, failing: body.failing ?? [] };
  } catch {
    return { at: Date.now(), status: 0, failing: ['unreachable'] };
  }
}

for (const impl of BROKERS) {
  test(`${impl.kind} kill -9 mid-stream: no acknowledged reading lost, ingest receives again, /readyz 503 while it is down`, { timeout: 300_000 }, async (t) => {
    const id = runId();
    const broker = await impl.start(id);
    t.after(() => broker.stop());
    const env: Record<string, string> = { ...isolatedEnv(id), MQTT_URL: broker.url, INGEST_SESSION_EXPIRY_S: '600', INGEST_LINGER_MS: '20' };
    const ingest = await startService('ingest', env, `mqtt-restart-${id}`);
    t.after(async () => void (await ingest.stop()));
    await waitReady([ingest]);

    // The cars on one clean-start MQTT 5 client (a gateway identity), as a telematics gateway runs them.
    const fleet = createFleet({ cars: 40, seed: 11 });
    const cars = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `e2e-cars-${id}`, clean: true, reconnectPeriod: 500, connectTimeout: 5_000, ...(await asGateway(broker.url)) });
    t.after(() => cars.end(true));
    // Every reading that got a PUBACK, whatever its reason code (a car on MQTT 3.1.1 sees none).
    // mqtt.js calls back with the stored PUBLISH, so the reason code is taken from the PUBACK packet.
    const acked = new Set<string>();
    const reasons = new Map<number, number>();
    let noSubscriber = 0;
    cars.on('packetreceive', (p) => {
      if (p.cmd === 'puback' && p.messageId !== undefined) reasons.set(p.messageId, p.reasonCode ?? 0);
    });
    const recording: PublishClient = {
      publish(topic, message, opts, callback) {
        return cars.publish(topic, message, opts, (err, packet) => {
          const messageId = (packet as { messageId?: number } | undefined)?.messageId;
          const reasonCode = messageId === undefined ? 0 : (reasons.get(messageId) ?? 0);
          if (!err) acked.add(`${topic.split('/')[1]}@${(JSON.parse(message) as { ts: number }).ts}`);
          if (!err && reasonCode === 16) noSubscriber++;
          (callback as (e?: Error, ack?: { reasonCode: number }) => void)(err ?? undefined, { reasonCode });
        });
      },
    };
    const inbox = createCarInbox({ client: cars, vehicleIds: fleet.vehicleIds, log: silentLogger, receipts: false });
    await inbox.start();
    const sim = createSimulator({ client: recording, fleet, log: silentLogger, ratePerCarHz: 10 });
    sim.start();

    // Long enough for the broker to have saved ingest's session and subscription.
    await sleep(Math.max(8_000, broker.savedAfterMs + 6_000));
    const beforeKill = acked.size;
    await broker.kill();
    const killedAt = Date.now();
    const during: Probe[] = [];
    while (Date.now() - killedAt < 5_000) {
      during.push(await readyz(ingest.healthPort));
      await sleep(250);
    }
    await broker.start();
    const restartedAt = Date.now();
    await waitFor('ingest ready again after the restart', async () => ((await readyz(ingest.healthPort)).status === 200 ? true : undefined), 60_000, 100);
    const readyAfterMs = Date.now() - restartedAt;

    // The cars' alert subscriptions come back: an alert published now reaches the car.
    const dispatcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `e2e-dispatch-${id}`, ...(await tlsAs(broker.url, 'service', 'dispatch')) });
    t.after(() => dispatcher.end(true));
    const car = fleet.vehicleIds[0]!;
    let n = 0;
    await waitFor(
      `an alert to ${car} after the restart`,
      async () => {
        if ((inbox.stats()['simulator_alerts_received_total'] ?? 0) > 0) return true;
        await dispatcher.publishAsync(`vehicles/${car}/alerts`, JSON.stringify({ incident_id: `inc-${id}-${n++}`, revision: 1, severity: 'HIGH' }), { qos: 1 });
        return undefined;
      },
      30_000,
      500,
    );
    const alertAfterMs = Date.now() - restartedAt;

    await sleep(8_000);
    await sim.stop();
    const stats = sim.stats();
    inbox.stop();

    const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
    const codec = await createAvroCodec<TelemetryRecord>(adminSchemaStore(), `${env.TOPIC_TELEMETRY!}-value`, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 1));
    const telemetry = await collect(kafka, { topic: env.TOPIC_TELEMETRY!, decode: codec });
    let seen = new Set<string>();
    const lost = (): string[] => [...acked].filter((k) => !seen.has(k));
    try {
      await telemetry.waitFor(
        (rs) => {
          seen = new Set(rs.map((r) => `${r.value.vehicle_id}@${r.value.ts}`));
          return lost().length === 0;
        },
        60_000,
        'every acknowledged reading in Kafka',
        500,
      );
    } catch (err) {
      // A missing reading is reported by the assertions below; a reader that failed is not one.
      if (!/^timed out/.test((err as Error).message)) throw err;
    } finally {
      await telemetry.stop();
    }
    seen = new Set(telemetry.values().map((r) => `${r.vehicle_id}@${r.ts}`));
    const records = telemetry.records.length;
    const firstAfterRestart = Math.min(
      ...telemetry
        .values()
        .map((r) => Number(r.received_at))
        .filter((receivedAt) => receivedAt >= restartedAt),
    );
    const afterRestart = [...seen].filter((k) => Number(k.split('@')[1]) > restartedAt).length;
    const downProbes = during.filter((p) => p.status === 503);
    t.diagnostic(
      `published ${stats.published}, failed ${stats.failed}, acknowledged ${acked.size} (${beforeKill} before the kill, ${noSubscriber} PUBACKs said no subscriber), ` +
        `in Kafka ${seen.size} distinct in ${records} records (duplicates ${records - seen.size}), lost ${lost().length}, after the restart ${afterRestart}`,
    );
    t.diagnostic(
      `/readyz during the outage: ${downProbes.length}/${during.length} probes 503 (failing: ${[...new Set(downProbes.flatMap((p) => p.failing))].join(', ')}); ` +
        `ready ${readyAfterMs} ms after the restart, first reading in Kafka ${firstAfterRestart - restartedAt} ms after it, car alert after ${alertAfterMs} ms`,
    );
    assert.deepEqual(lost().slice(0, 10), [], `${lost().length} acknowledged readings are missing from Kafka`);
    assert.ok(afterRestart > 100, `ingest keeps receiving after the restart (${afterRestart} readings)`);
    assert.ok(during.length > 0 && downProbes.length >= during.length - 2, `/readyz was 503 while the broker was down (${downProbes.length}/${during.length})`);
    assert.ok(
      downProbes.every((p) => p.failing.includes('mqtt')),
      'the failing check is named: mqtt',
    );
    assert.equal(stats.failed, 0, 'every reading the cars made was eventually acknowledged');
    assert.equal(stats.published, acked.size);
  });
}
