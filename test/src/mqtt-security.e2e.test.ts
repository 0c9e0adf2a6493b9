/**
 * The attacks an MQTT client on the fleet's network could try, as one contract suite against every
 * broker implementation (support/brokers.ts: Mosquitto with the committed configuration, HiveMQ CE
 * with infra/hivemq; both TLS with client certificates of the fleet CA and infra/mosquitto/acl) and
 * a real ingest writing to Kafka. Before the secure setup every one of them worked: anonymous
 * clients read every car's topics, any client could alert any car and forge readings and receipts.
 *
 * Where the brokers differ the contract says what both do: a refused publish gets PUBACK 135
 * (HiveMQ then also disconnects the client, so each attempt has a connection of its own); a
 * subscription outside the ACL is refused (HiveMQ: SUBACK 135) or granted and never delivered
 * (Mosquitto); a revoked certificate is refused in the TLS handshake (Mosquitto) or with CONNACK
 * 135 (HiveMQ).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ensureCa, openCa } from '@pitwall/common/pki';
import { createFleet, toPayload } from '@pitwall/simulator';
import { isolatedEnv, kafkaClientConfig, runId, startService, waitFor, waitReady, type ServiceProcess } from './support/stack.js';
import { BROKERS, type PrivateBroker } from './support/brokers.js';
import { pkiDirFor, tlsAs } from './support/identities.js';
import { readTopic } from './support/faults.js';

const NOT_AUTHORIZED = 135;

/** A healthy car's reading, as the simulator makes it. */
const reading = (ts: number): string => JSON.stringify(toPayload(createFleet({ cars: 1, seed: 3 }).tick(ts)[0]!));

for (const impl of BROKERS) {
  describe(`MQTT security on ${impl.kind}: identities from certificates, per-car ACLs`, { timeout: 240_000 }, () => {
    const id = runId();
    const env = isolatedEnv(id);
    const carA = `sec${id}-a`;
    const carB = `sec${id}-b`;
    let broker: PrivateBroker;
    let ingest: ServiceProcess;
    const clients: MqttClient[] = [];
    const connectAs = async (opts: IClientOptions, tag: string): Promise<MqttClient> => {
      const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `${tag}-${id}`, reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
      clients.push(c);
      return c;
    };
    /** The outcome of a connection attempt: 'connected' or the error's message. */
    const attempt = async (opts: IClientOptions, tag: string): Promise<string> => {
      try {
        const c = await connectAs(opts, tag);
        return c.connected ? 'connected' : 'not connected';
      } catch (err) {
        return (err as Error).message;
      }
    };
    /** PUBACK reason of a QoS 1 publish (0 = accepted). */
    const pubackReason = async (c: MqttClient, topic: string, payload: string): Promise<number> => {
      try {
        const ack = await c.publishAsync(topic, payload, { qos: 1 });
        return (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
      } catch (err) {
        return (err as { code?: number }).code ?? -1;
      }
    };

    before(async () => {
      broker = await impl.start(`security-${id}`);
      ingest = await startService('ingest', { ...env, MQTT_URL: broker.url }, `mqtt-security-${id}`);
      await waitReady([ingest]);
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
      assert.equal(await ingest?.stop(), 0, 'ingest stops cleanly');
      await broker?.stop();
    });

    test('an anonymous client is refused, over TLS and over plain TCP', async () => {
      const { ca } = await tlsAs(broker.url, 'car', carA);
      assert.match(await attempt({ ca }, 'anon-tls'), /certificate required|alert|handshake|ECONNRESET|socket/i);
      const plain = broker.url.replace('mqtts:', 'mqtt:');
      // Mosquitto closes the connection; HiveMQ keeps it open without answering, and mqtt.js's
      // connectAsync then never settles: no CONNACK within 5 s counts as refused too.
      const client = mqtt.connect(plain, { protocolVersion: 5, clientId: `anon-plain-${id}`, reconnectPeriod: 0, connectTimeout: 3_000 });
      clients.push(client);
      const outcome = await new Promise<string>((resolve) => {
        client.once('connect', () => resolve('connected'));
        client.once('error', (err) => resolve(err.message));
        client.once('close', () => resolve('closed'));
        setTimeout(() => resolve('no CONNACK in 5 s'), 5_000);
      });
      assert.notEqual(outcome, 'connected', 'a plain MQTT client gets no CONNACK from the TLS listener');
    });

    test('a certificate of another CA is refused, even when it names a real car', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'rogue-ca-'));
      try {
        const rogue = await (await ensureCa(dir, { name: 'Pitwall fleet CA' })).issueEphemeral({ kind: 'car', name: carB });
        const { ca } = await tlsAs(broker.url, 'car', carA);
        assert.match(await attempt({ ca, cert: rogue.certPem, key: rogue.keyPem }, 'rogue'), /unknown ca|certificate|alert|ECONNRESET|socket/i);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a car cannot publish as another car, to any alerts topic, or another car's receipt; its own data still flows", async () => {
      const a = await connectAs(await tlsAs(broker.url, 'car', carA), 'car-a');
      const b = await connectAs(await tlsAs(broker.url, 'car', carB), 'car-b');
      const bGot: string[] = [];
      b.on('message', (t) => bGot.push(t));
      await b.subscribeAsync([`vehicles/${carB}/alerts`, `vehicles/${carB}/maintenance`], { qos: 1 });

      const now = Date.now();
      const forged: Record<string, string> = {
        [`vehicles/${carB}/telemetry`]: reading(now),
        [`vehicles/${carB}/alerts/receipt`]: JSON.stringify({ incident_id: `inc-${id}`, revision: 1 }),
        [`vehicles/${carB}/alerts`]: JSON.stringify({ incident_id: `fake-${id}`, severity: 'CRITICAL' }),
        [`vehicles/${carB}/maintenance`]: JSON.stringify({ status: 'ok', open_incidents: [] }),
        [`vehicles/${carA}/alerts`]: JSON.stringify({ incident_id: `self-${id}`, severity: 'CRITICAL' }),
        [`vehicles/${carA}/maintenance`]: JSON.stringify({ status: 'ok', open_incidents: [] }),
        [`fleet/incidents`]: JSON.stringify({ incident_id: `fleet-${id}` }),
      };
      const reasons: Record<string, number> = {};
      for (const [topic, payload] of Object.entries(forged))
        reasons[topic] = await pubackReason(await connectAs(await tlsAs(broker.url, 'car', carA), `forger-${Object.keys(reasons).length}`), topic, payload);
      assert.deepEqual(reasons, Object.fromEntries(Object.keys(forged).map((t) => [t, NOT_AUTHORIZED])), 'every forged publish is refused with PUBACK 135');

      // What a car may send still arrives, under its own id.
      assert.equal(await pubackReason(a, `vehicles/${carA}/telemetry`, reading(now + 1000)), 0);
      assert.equal(await pubackReason(a, `vehicles/${carA}/alerts/receipt`, JSON.stringify({ incident_id: `own-${id}`, revision: 1 })), 0);

      const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
      const keys = async (topic: string): Promise<string[]> => {
        const out: string[] = [];
        await readTopic(kafka, topic, (m) => void out.push(m.key?.toString() ?? ''));
        return out;
      };
      const telemetry = await waitFor('car A reading in Kafka', async () => ((await keys(env.TOPIC_TELEMETRY)).length > 0 ? keys(env.TOPIC_TELEMETRY) : undefined), 60_000, 1000);
      const receipts = await waitFor('car A receipt in Kafka', async () => ((await keys(env.TOPIC_RECEIPTS)).length > 0 ? keys(env.TOPIC_RECEIPTS) : undefined), 60_000, 1000);
      assert.deepEqual(telemetry, [carA], 'only the reading car A sent as itself');
      assert.deepEqual(receipts, [carA], "no receipt in car B's name");
      assert.deepEqual(bGot, [], 'car B received no forged alert or state');
    });

    test('a car reads only its own alerts and maintenance state, even subscribed to vehicles/#', async () => {
      const a = await connectAs(await tlsAs(broker.url, 'car', carA), 'reader-a');
      const aGot: string[] = [];
      a.on('message', (t) => aGot.push(t));
      const granted: Record<string, number> = {};
      for (const filter of ['vehicles/#', `vehicles/${carB}/alerts`, `vehicles/${carB}/maintenance`, '#', `vehicles/${carA}/alerts`, `vehicles/${carA}/maintenance`]) {
        granted[filter] = await a
          .subscribeAsync(filter, { qos: 1 })
          .then((g) => g[0]?.qos ?? -1)
          .catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0] ?? -1);
      }
      assert.equal(granted[`vehicles/${carA}/alerts`], 1, 'its own alerts');
      assert.equal(granted[`vehicles/${carA}/maintenance`], 1, 'its own state');
      const dispatch = await connectAs(await tlsAs(broker.url, 'service', 'dispatch'), 'dispatch');
      const alert = (v: string): string => JSON.stringify({ incident_id: `inc-${v}`, vehicle_id: v, severity: 'CRITICAL' });
      for (const v of [carB, carA]) {
        assert.equal(await pubackReason(dispatch, `vehicles/${v}/alerts`, alert(v)), 0, 'dispatch may alert any car');
        await dispatch.publishAsync(`vehicles/${v}/maintenance`, JSON.stringify({ status: 'attention' }), { qos: 1, retain: true });
      }
      await waitFor("car A's own alert and state", () => (aGot.includes(`vehicles/${carA}/alerts`) && aGot.includes(`vehicles/${carA}/maintenance`) ? true : undefined), 10_000, 50);
      await new Promise((r) => setTimeout(r, 500)); // anything of car B's would have arrived with them
      assert.deepEqual([...new Set(aGot)].sort(), [`vehicles/${carA}/alerts`, `vehicles/${carA}/maintenance`]);

      // A new subscriber gets no retained state but its own either.
      const late = await connectAs(await tlsAs(broker.url, 'car', carA), 'late-a');
      const lateGot: string[] = [];
      late.on('message', (t) => lateGot.push(t));
      // A wildcard over every car is refused (HiveMQ) or granted and filtered (Mosquitto).
      await late.subscribeAsync(['vehicles/+/maintenance'], { qos: 1 }).catch(() => late.subscribeAsync([`vehicles/${carA}/maintenance`], { qos: 1 }));
      await waitFor('its own retained state', () => (lateGot.length > 0 ? true : undefined), 10_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(lateGot, [`vehicles/${carA}/maintenance`]);
      for (const v of [carA, carB]) await dispatch.publishAsync(`vehicles/${v}/maintenance`, '', { qos: 1, retain: true });
    });

    test('after a revoke and reload the certificate is refused, its open connection cut; other cars are not', async () => {
      const carC = `sec${id}-c`;
      const creds = await tlsAs(broker.url, 'car', carC);
      // Connected before the revocation, and trying to reconnect whenever it is dropped.
      const open = await connectAs({ ...creds, reconnectPeriod: 200 }, 'before-revoke');
      const refusals: string[] = [];
      open.on('error', (err) => refusals.push(err.message));
      const revoked = await (await openCa(pkiDirFor(broker.url))).revoke('car', carC);
      assert.equal(revoked, 1);
      await broker.reload();
      const refused = /revoked|not authorized/i;
      assert.match(await attempt(creds, 'after-revoke'), refused);
      await waitFor('the open connection to be refused on reconnecting', () => (refusals.some((m) => refused.test(m)) ? true : undefined), 10_000, 100);
      assert.equal(open.connected, false, "the revoked car's open connection is gone");
      assert.equal(await attempt(await tlsAs(broker.url, 'car', carA), 'other-car'), 'connected');
    });
  });
}
