/**
 * Dispatch on the real brokers: incident records written straight to an isolated compacted
 * incidents topic (Avro, as the incidents service writes them) come out over MQTT 5 as a car and
 * an operator would see them.
 *
 * - alerts on vehicles/{id}/alerts with contentType, correlationData = incident id,
 *   messageExpiryInterval and userProperties { revision, severity }; only for OPENED / ESCALATED /
 *   REOPENED, never for records of an aborted transaction (read_committed);
 * - the retained vehicles/{id}/maintenance state, seen by a client that connects afterwards:
 *   attention with every open incident, ok once they are closed;
 * - every change on the fleet topic; undecodable records in the dead-letter topic;
 * - after a restart the retained state still lists the incidents committed before it (the view is
 *   rebuilt from the compacted topic), and nothing committed is alerted again.
 * Once per MQTT broker (support/brokers.ts): the shared Mosquitto of scripts/infra.sh, and a private
 * HiveMQ CE with the same identities and ACL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { connectMqtt, createAvroCodec, defaultSchemasDir, loadSchemaFile, silentLogger, type AvroCodec, type IncidentRecord } from '@pitwall/common';
import { collect, incident as incidentFixture } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, runId, type ServiceProcess, startService, waitFor, waitReady } from './support/stack.js';
import { asGateway, clearRetained, observe, type Observer } from './support/identities.js';
import { BROKERS, type BrokerImplementation, type PrivateBroker } from './support/brokers.js';

for (const impl of BROKERS) dispatchSuite(impl);

function dispatchSuite(impl: BrokerImplementation): void {
  const id = runId();
  const env: Record<string, string> = {
    ...isolatedEnv(id),
    TOPIC_INCIDENTS_DLQ: `e2e.${id}.maintenance.incidents.dlq`,
    DISPATCH_ALERT_EXPIRY_S: '600',
  };
  const V1 = `d${id}-1`;
  const V2 = `d${id}-2`;
  const T0 = Date.now() - 3_600_000;

  /** An incident opened at T0 (updated a minute later): the shared fixture with its timestamps near the test's clock. */
  const incident = (over: Partial<IncidentRecord> & Pick<IncidentRecord, 'incident_id' | 'vehicle_id'>): IncidentRecord => incidentFixture(over, T0);

  const A = `inc-${id}-a`;
  const B = `inc-${id}-b`;
  const C = `inc-${id}-c`;
  const A1 = incident({ incident_id: A, vehicle_id: V1 });
  const B1 = incident({ incident_id: B, vehicle_id: V1, area: 'tires', component: 'tires', action: 'Check tire pressure.', opened_at: T0 + 1_000, severity: 'MEDIUM' });
  const A2 = { ...A1, revision: 2, last_change: 'DELIVERED' as const, delivered_at: T0 + 70_000, updated_at: T0 + 70_000 };
  const C1 = incident({ incident_id: C, vehicle_id: V2 });
  const B2 = { ...B1, revision: 2, last_change: 'ESCALATED' as const, severity: 'CRITICAL' as const, last_score: 30, peak_score: 30, updated_at: T0 + 120_000 };
  const A3 = { ...A2, revision: 3, last_change: 'CLEARED' as const, status: 'CLEARED' as const, closed_at: T0 + 400_000, updated_at: T0 + 400_000 };
  const B3 = { ...B2, revision: 3, last_change: 'RESOLVED' as const, status: 'RESOLVED' as const, resolved_by: 'ana', closed_at: T0 + 500_000, updated_at: T0 + 500_000 };

  interface Received {
    topic: string;
    body: Record<string, unknown>;
    packet: IPublishPacket;
  }

  let mqttUrl = INFRA.mqtt;
  let broker: PrivateBroker | undefined;
  const toReceived = (topic: string, payload: Buffer, packet: IPublishPacket): Received => ({ topic, body: payload.length ? JSON.parse(payload.toString()) : {}, packet });
  const connect = async (clientId: string, onMessage?: (m: Received) => void): Promise<MqttClient> =>
    connectMqtt(mqttUrl, { protocolVersion: 5, clientId, clean: true, reconnectPeriod: 0, ...(await asGateway(mqttUrl)) }, silentLogger, (c) => {
      if (onMessage) c.on('message', (topic, payload, packet) => onMessage({ topic, body: payload.length ? JSON.parse(payload.toString()) : {}, packet }));
    });

  /** What a client connecting now gets as the retained maintenance state of a vehicle. */
  async function retainedState(vehicle: string): Promise<Received> {
    const got: Received[] = [];
    const c = await connect(`e2e-late-${id}-${Math.random().toString(36).slice(2, 8)}`, (m) => got.push(m));
    try {
      await c.subscribeAsync(`vehicles/${vehicle}/maintenance`, { qos: 1 });
      return await waitFor(`retained maintenance state of ${vehicle}`, () => got[0], 10_000, 50);
    } finally {
      await c.endAsync();
    }
  }

  describe(`dispatch from incidents over MQTT 5 on ${impl.kind}`, { timeout: 240_000 }, () => {
    const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
    let producer: Producer;
    let txProducer: Producer;
    let codec: AvroCodec<IncidentRecord>;
    let listener: Observer | undefined;
    let dispatch: ServiceProcess | undefined;
    const received: Received[] = [];
    const write = async (...records: IncidentRecord[]): Promise<void> => {
      await producer.send({ topic: env.TOPIC_INCIDENTS!, acks: -1, messages: records.map((r) => ({ key: r.incident_id, value: codec.encode(r) })) });
    };
    const alerts = (incidentId?: string): Received[] =>
      received.filter((m) => m.topic.startsWith('vehicles/') && m.topic.endsWith('/alerts') && (incidentId === undefined || m.body.incident_id === incidentId));
    const fleet = (): Received[] => received.filter((m) => m.topic === env.DISPATCH_FLEET_TOPIC);
    const liveState = (vehicle: string, pred: (body: Record<string, unknown>) => boolean): Promise<Received> =>
      waitFor(`a maintenance state of ${vehicle}`, () => received.find((m) => m.topic === `vehicles/${vehicle}/maintenance` && pred(m.body)), 90_000);
    const openIds = (body: Record<string, unknown>): string[] => (body.open_incidents as { incident_id: string }[]).map((i) => i.incident_id);

    before(async () => {
      if (impl.kind !== 'mosquitto') {
        broker = await impl.start(id);
        mqttUrl = broker.url;
        env.MQTT_URL = mqttUrl;
      }
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: env.TOPIC_INCIDENTS!, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
        waitForLeaders: true,
      });
      await admin.disconnect();
      codec = await createAvroCodec<IncidentRecord>(adminSchemaStore(), `${env.TOPIC_INCIDENTS!}-value`, await loadSchemaFile(defaultSchemasDir(), 'incident', 1));
      producer = kafka.producer({ idempotent: true });
      await producer.connect();
      txProducer = kafka.producer({ idempotent: true, transactionalId: `e2e.${id}.writer`, maxInFlightRequests: 1 });
      await txProducer.connect();
      const topics = [`vehicles/${V1}/alerts`, `vehicles/${V1}/maintenance`, `vehicles/${V2}/alerts`, `vehicles/${V2}/maintenance`, env.DISPATCH_FLEET_TOPIC!];
      listener = await observe(mqttUrl, `e2e-listener-${id}`, topics, (...m) => received.push(toReceived(...m)));
    });

    after(async () => {
      await dispatch?.stop();
      // Leave no retained state behind on the shared broker.
      await clearRetained(
        mqttUrl,
        [V1, V2].map((v) => `vehicles/${v}/maintenance`),
      );
      await listener?.end();
      await producer?.disconnect();
      await txProducer?.disconnect();
      await broker?.stop();
    });

    test('alerts, retained state and fleet messages from incidents written before dispatch started', async () => {
      await write(A1, B1, A2);
      await producer.send({ topic: env.TOPIC_INCIDENTS!, acks: -1, messages: [{ key: 'garbage', value: Buffer.from('not avro at all') }] });
      const tx = await txProducer.transaction();
      await tx.send({ topic: env.TOPIC_INCIDENTS!, messages: [{ key: C1.incident_id, value: codec.encode(C1) }] });
      await tx.abort();

      dispatch = await startService('dispatch', env, `dispatch-${id}`);
      await waitReady([dispatch], 90_000);
      await waitFor('two alerts and three fleet messages', () => (alerts().length >= 2 && fleet().length >= 3 ? true : undefined), 90_000);
      await liveState(V1, (b) => (b.open_incidents as { revision: number }[]).some((i) => i.revision === 2));

      const a = alerts(A)[0]!;
      assert.equal(a.topic, `vehicles/${V1}/alerts`);
      assert.equal(a.packet.qos, 1);
      assert.equal(a.packet.retain, false);
      assert.equal(a.packet.properties?.contentType, 'application/json');
      assert.deepEqual(a.packet.properties?.correlationData, Buffer.from(A));
      const expiry = a.packet.properties?.messageExpiryInterval;
      assert.ok(expiry !== undefined && expiry > 0 && expiry <= 600, `messageExpiryInterval ${expiry}`);
      assert.deepEqual({ ...a.packet.properties?.userProperties }, { revision: '1', severity: 'HIGH' });
      assert.deepEqual(a.body, {
        schema: 'pitwall.alert.v2',
        incident_id: A,
        revision: 1,
        vehicle_id: V1,
        status: 'OPEN',
        severity: 'HIGH',
        area: 'cooling',
        component: 'cooling system',
        action: A1.action,
        score: 12.5,
        threshold: 3.25,
        model: { name: 'pitwall-ae', version: '1' },
        contributors: A1.contributors,
        opened_at: T0,
        updated_at: T0 + 60_000,
      });
      assert.deepEqual(
        alerts(B).map((m) => ({ ...m.packet.properties?.userProperties })),
        [{ revision: '1', severity: 'MEDIUM' }],
      );
      assert.deepEqual(alerts(C), [], 'no alert from an aborted transaction');

      const ops = fleet().map((m) => m.body);
      assert.deepEqual(ops.map((b) => `${b.incident_id}#${b.revision}`).sort(), [`${A}#1`, `${A}#2`, `${B}#1`].sort());
      assert.ok(ops.every((b) => b.schema === 'pitwall.incident.v1'));
      assert.equal(ops.find((b) => b.revision === 2)!.delivered_at, T0 + 70_000);

      const late = await retainedState(V1);
      assert.equal(late.packet.retain, true, 'a client connecting later gets the retained state');
      assert.equal(late.packet.properties?.contentType, 'application/json');
      assert.equal(late.body.schema, 'pitwall.maintenance.v1');
      assert.equal(late.body.vehicle_id, V1);
      assert.equal(late.body.status, 'attention');
      assert.deepEqual(late.body.open_incidents, [
        { incident_id: A, area: 'cooling', component: 'cooling system', action: A1.action, severity: 'HIGH', status: 'OPEN', opened_at: T0, revision: 2 },
        { incident_id: B, area: 'tires', component: 'tires', action: 'Check tire pressure.', severity: 'MEDIUM', status: 'OPEN', opened_at: T0 + 1_000, revision: 1 },
      ]);
      assert.equal(late.body.updated_at, T0 + 70_000);

      const dlq = await collect(kafka, { topic: env.TOPIC_INCIDENTS_DLQ! });
      let dead: Record<string, string>;
      try {
        dead = (await dlq.waitFor(1, 60_000, 'the undecodable record'))[0]!.headers;
      } finally {
        await dlq.stop();
      }
      assert.equal(dead['pitwall.dlq.service'], 'dispatch');
      assert.equal(dead['pitwall.source.topic'], env.TOPIC_INCIDENTS);
      assert.ok(dead['pitwall.dlq.reason']!.length > 0);
    });

    test('after a restart the retained state still lists every open incident; closing them turns it ok', async () => {
      assert.equal(await dispatch!.stop(), 0, 'dispatch stops cleanly');
      const before = received.length;
      await write(B2);
      dispatch = await startService('dispatch', env, `dispatch-${id}-restart`);
      await waitReady([dispatch], 90_000);
      const escalated = await waitFor('the escalation alert', () => alerts(B).find((m) => m.body.revision === 2), 90_000);
      assert.deepEqual({ ...escalated.packet.properties?.userProperties }, { revision: '2', severity: 'CRITICAL' });
      await liveState(V1, (b) => (b.open_incidents as { revision: number; incident_id: string }[]).some((i) => i.incident_id === B && i.revision === 2));

      const late = await retainedState(V1);
      assert.equal(late.body.status, 'attention');
      assert.deepEqual(openIds(late.body), [A, B], 'the incident committed before the restart is still listed');
      assert.deepEqual(
        (late.body.open_incidents as { severity: string }[]).map((i) => i.severity),
        ['HIGH', 'CRITICAL'],
      );
      assert.deepEqual(
        received
          .slice(before)
          .filter((m) => m.topic.startsWith('vehicles/') && m.topic.endsWith('/alerts'))
          .map((m) => `${m.body.incident_id}#${m.body.revision}`),
        [`${B}#2`],
        'nothing committed before the restart is alerted again',
      );

      await write(A3, B3);
      await liveState(V1, (b) => b.status === 'ok');
      const cleared = await retainedState(V1);
      assert.equal(cleared.packet.retain, true);
      assert.deepEqual({ status: cleared.body.status, open: cleared.body.open_incidents, updated_at: cleared.body.updated_at }, { status: 'ok', open: [], updated_at: T0 + 500_000 });
      await waitFor('fleet messages for the closing changes', () => (fleet().filter((m) => m.body.revision === 3).length >= 2 ? true : undefined), 60_000);
      assert.deepEqual(
        alerts().filter((m) => m.body.revision === 3),
        [],
        'closing changes raise no alert',
      );
      assert.deepEqual(
        alerts(A).map((m) => m.body.revision),
        [1],
        'one alert for A over the whole run',
      );
      assert.deepEqual(alerts(C), []);
    });
  });
}
