/**
 * End to end on the real brokers, nothing mocked: a simulated fleet publishes over MQTT, the five
 * services run as real processes, and the test listens where a car and an operator would.
 *
 * - healthy cars plus one car with an injected failure -> scores -> an incident -> an alert for
 *   that car on vehicles/{id}/alerts (pitwall.alert.v2 with its MQTT 5 properties), the incident on
 *   the operators' topic and the car's retained maintenance state "attention";
 * - the simulated car confirms the alert with a receipt, which goes through ingest and the
 *   incidents service: the incident in maintenance.incidents gets delivered_at;
 * - the healthy cars raise no alert during the run;
 * - malformed payloads land in the telemetry dead-letter topic with their reason and raw bytes.
 * Once per MQTT broker (support/brokers.ts): the shared Mosquitto of scripts/infra.sh, and a private
 * HiveMQ CE with the same identities and ACL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket } from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { createCarInbox, createFleet, createSimulator, type CarAlert } from '@pitwall/simulator';
import { connectMqtt, createAvroCodec, defaultSchemasDir, loadSchemaFile, silentLogger, type IncidentRecord } from '@pitwall/common';
import { collect } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, topicRecords, waitFor, waitForCaughtUp, waitReady } from './support/stack.js';
import { asGateway, clearRetained, connectTestCars, observe, type Observer } from './support/identities.js';
import { BROKERS, type BrokerImplementation, type PrivateBroker } from './support/brokers.js';

const CARS = 12;

interface Received {
  topic: string;
  body: Record<string, unknown>;
  packet: IPublishPacket;
}

for (const impl of BROKERS) pipelineSuite(impl);

function pipelineSuite(impl: BrokerImplementation): void {
  const id = runId();
  const prefix = `e2e${id}`;
  const FAILING = `${prefix}-0004`;
  // Small fetches make windowing resume mid-window on every batch, as it does under load.
  // The fleet runs 10x faster than the wall clock, so its event time gets minutes ahead of ingest's clock.
  const env: ReturnType<typeof isolatedEnv> & Record<string, string> = { ...isolatedEnv(id), WINDOWING_FETCH_MAX_BYTES: '4096', INGEST_MAX_FUTURE_SKEW_MS: '600000' };
  let url = INFRA.mqtt;

  describe(`pipeline end to end on ${impl.kind}`, { timeout: 360_000 }, () => {
    const services: ServiceProcess[] = [];
    let broker: PrivateBroker | undefined;
    let listener: Observer | undefined;
    const received: Received[] = [];
    const alerts = (): Received[] => received.filter((m) => m.topic.startsWith('vehicles/') && m.topic.endsWith('/alerts'));

    before(async () => {
      if (impl.kind !== 'mosquitto') {
        broker = await impl.start(id);
        url = broker.url;
        env.MQTT_URL = url;
      }
      for (const name of ['ingest', 'windowing', 'scoring', 'incidents', 'dispatch']) services.push(await startService(name, env, `pipeline-${id}`));
      await waitReady(services, 90_000);
      listener = await observe(url, `e2e-listener-${id}`, [`vehicles/+/alerts`, `vehicles/${FAILING}/maintenance`, env.DISPATCH_FLEET_TOPIC], (topic, payload, packet) =>
        received.push({ topic, body: payload.length ? JSON.parse(payload.toString()) : {}, packet }),
      );
    });

    after(async () => {
      // Leave no retained maintenance state behind on the shared broker.
      await clearRetained(
        url,
        Array.from({ length: CARS }, (_, i) => `vehicles/${prefix}-${String(i + 1).padStart(4, '0')}/maintenance`),
      );
      await listener?.end();
      const codes = await Promise.all(services.map((s) => s.stop()));
      assert.deepEqual(
        codes,
        services.map(() => 0),
        'every service shuts down cleanly on SIGTERM',
      );
      await broker?.stop();
    });

    test('a failing car gets an incident alert over MQTT 5 and confirms it; healthy cars get none', async () => {
      const start = Date.now();
      const fleet = createFleet({
        cars: CARS,
        seed: 7,
        idPrefix: prefix,
        failures: [{ vehicleId: FAILING, mode: 'coolant_overheat', onsetTs: start + 30_000, rampMs: 30_000 }],
      });
      // Each car on its own connection with its own certificate, as the simulator runs them.
      const client = await connectTestCars(url, fleet.vehicleIds, id);
      const carAlerts: CarAlert[] = [];
      const inbox = createCarInbox({ client, vehicleIds: fleet.vehicleIds, log: silentLogger, receipts: true, onAlert: (a) => carAlerts.push(a) });
      await inbox.start();
      // 4 minutes of event time at 1 Hz per car, compressed 10x.
      const sim = createSimulator({ client, fleet, log: silentLogger, ratePerCarHz: 1, timeScale: 10, startTs: start, durationMs: 240_000 });
      sim.start();
      const carAlert = await waitFor(`an alert on vehicles/${FAILING}/alerts`, () => alerts().find((a) => a.topic === `vehicles/${FAILING}/alerts`), 150_000);
      await sim.done;

      // The alert as the car sees it: pitwall.alert.v2 with its MQTT 5 properties.
      const body = carAlert.body;
      const incidentId = String(body.incident_id);
      assert.equal(body.schema, 'pitwall.alert.v2');
      assert.equal(body.vehicle_id, FAILING);
      assert.equal(body.area, 'cooling');
      assert.ok(['OPEN', 'ACKNOWLEDGED'].includes(String(body.status)));
      assert.equal((body.model as { name: string }).name, 'pitwall-ae');
      assert.ok((body.score as number) > (body.threshold as number));
      const contributors = body.contributors as { sensor: string; share: number }[];
      assert.ok(contributors.length >= 1 && contributors.length <= 3);
      assert.ok(
        contributors.some((c) => c.sensor === 'coolant_temp'),
        `coolant_temp among contributors: ${JSON.stringify(contributors)}`,
      );
      const props = carAlert.packet.properties;
      assert.equal(props?.contentType, 'application/json');
      assert.deepEqual(props?.correlationData, Buffer.from(incidentId));
      assert.ok((props?.messageExpiryInterval ?? 0) > 0, 'alerts expire');
      assert.deepEqual({ ...props?.userProperties }, { revision: String(body.revision), severity: String(body.severity) });

      // Operators get the incident on the fleet topic.
      const fleetCopy = await waitFor('the incident on the fleet topic', () => received.find((m) => m.topic === env.DISPATCH_FLEET_TOPIC && m.body.incident_id === incidentId), 30_000);
      assert.equal(fleetCopy.body.schema, 'pitwall.incident.v1');
      assert.ok((fleetCopy.body.last_anomalous_window_end as number) > start + 30_000, 'no incident from a window that ended before the failure onset');

      // The simulated car got it and confirmed it; the receipt comes back as delivered_at.
      await waitFor('the simulated car to receive the alert', () => carAlerts.find((a) => a.incidentId === incidentId && a.vehicleId === FAILING), 30_000);
      const delivered = await deliveredIncident(incidentId, id, env.TOPIC_INCIDENTS);
      assert.equal(delivered.vehicle_id, FAILING);
      assert.ok(delivered.delivered_at! >= start, 'delivered_at set from the receipt');
      inbox.stop();
      await client.endAsync();

      // The car's retained maintenance state names the incident.
      const state = await waitFor(
        'a maintenance state naming the incident',
        () => received.find((m) => m.topic === `vehicles/${FAILING}/maintenance` && (m.body.open_incidents as { incident_id: string }[]).some((i) => i.incident_id === incidentId)),
        30_000,
      );
      assert.equal(state.body.status, 'attention');

      // Judge the healthy cars once the stream went through, not after a fixed wait: windowing
      // emitted the windows the run could close (10 s windows over 240 s of event time: at least 22
      // per car), and scoring, incidents and dispatch consumed everything upstream of them.
      const kafka = new Kafka({ clientId: `e2e-${id}-gate`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      try {
        await waitFor('windowing to emit the closable windows of every car', async () => (await topicRecords(admin, env.TOPIC_FEATURES)) >= CARS * 22, 60_000);
        await waitForCaughtUp(
          admin,
          [
            { group: env.SCORING_GROUP_ID, topic: env.TOPIC_FEATURES },
            { group: env.INCIDENTS_GROUP_ID, topic: env.TOPIC_SCORES },
            { group: env.DISPATCH_GROUP_ID, topic: env.TOPIC_INCIDENTS },
          ],
          60_000,
        );
      } finally {
        await admin.disconnect();
      }
      const healthy = alerts().filter((a) => String(a.body.vehicle_id).startsWith(prefix) && a.body.vehicle_id !== FAILING);
      assert.deepEqual(
        healthy.map((a) => `${a.body.vehicle_id} ${a.body.area} score ${a.body.score} opened ${a.body.opened_at}`),
        [],
        'healthy cars raised no alert',
      );
    });

    test('malformed telemetry lands in the dead-letter topic with its reason and raw bytes', async () => {
      const client = await connectMqtt(url, { protocolVersion: 5, clientId: `e2e-bad-${id}`, ...(await asGateway(url)) }, silentLogger);
      const cases: [string, Buffer, string][] = [
        [`vehicles/${prefix}-bad1/telemetry`, Buffer.from('{"ts": 1, broken'), 'payload.not_json'],
        [`vehicles/${prefix}-bad2/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), speed: 'fast' })), 'field.missing'],
        [`vehicles/${prefix}-bad3/telemetry`, Buffer.from('[1,2,3]'), 'payload.not_object'],
      ];
      for (const [topic, payload] of cases) await client.publishAsync(topic, payload, { qos: 1 });
      await client.endAsync();

      const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
      const dlq = await collect(kafka, { topic: env.TOPIC_TELEMETRY_DLQ });
      const bySource = (): Map<string, { value: Buffer | null; headers: Record<string, string> }> => new Map(dlq.records.map((r) => [r.headers['pitwall.source.mqtt.topic']!, r]));
      try {
        await dlq.waitFor(() => bySource().size >= cases.length, 60_000, 'three dead letters');
      } finally {
        await dlq.stop();
      }
      const seen = bySource();
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
}

/** Reads maintenance.incidents (read_committed) until the incident carries delivered_at. */
async function deliveredIncident(incidentId: string, id: string, topic: string): Promise<IncidentRecord> {
  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const codec = await createAvroCodec<IncidentRecord>(adminSchemaStore(), `${topic}-value`, await loadSchemaFile(defaultSchemasDir(), 'incident', 1));
  // A tombstone (no value) is no revision of the incident.
  const incidents = await collect(kafka, { topic, decode: codec, filter: (r) => r.value !== null });
  try {
    return await incidents.waitFor(
      () =>
        incidents
          .values()
          .filter((incident) => incident.incident_id === incidentId && incident.delivered_at !== null)
          .at(-1),
      60_000,
      `delivered_at on incident ${incidentId}`,
    );
  } finally {
    await incidents.stop();
  }
}
