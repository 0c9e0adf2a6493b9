import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { ISubscriptionGrant, ISubscriptionMap, MqttClient } from 'mqtt';
import { silentLogger } from '../src/log.js';
import { connectWithHeldAcks, keepSubscribed, publishPacketSize, withPubackReasons, type HeldMessage } from '../src/mqtt.js';

/** A client whose SUBSCRIBEs are answered by the test. */
function fakeClient() {
  const e = new EventEmitter();
  const subscribes: { map: ISubscriptionMap; answer(grants: ISubscriptionGrant[] | Error): void }[] = [];
  const client = Object.assign(e, {
    connected: false,
    subscribeAsync: (map: ISubscriptionMap) =>
      new Promise<ISubscriptionGrant[]>((resolve, reject) => subscribes.push({ map: { ...map }, answer: (g) => (g instanceof Error ? reject(g) : resolve(g)) })),
  });
  return {
    client: client as unknown as MqttClient,
    subscribes,
    connect(sessionPresent: boolean) {
      client.connected = true;
      e.emit('connect', { cmd: 'connack', sessionPresent });
    },
    close() {
      client.connected = false;
      e.emit('close');
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const TOPICS = ['$share/ingest/vehicles/+/telemetry', '$share/ingest/vehicles/+/alerts/receipt'];

test('keepSubscribed subscribes on every connect, also when the broker says the session is present', async () => {
  const f = fakeClient();
  const changes: [boolean, string | undefined][] = [];
  const sub = keepSubscribed(f.client, TOPICS, { qos: 1, log: silentLogger, onChange: (ok, why) => changes.push([ok, why]) });
  assert.equal(sub.active(), false);
  f.connect(false);
  assert.equal(f.subscribes.length, 1);
  assert.deepEqual(f.subscribes[0]!.map, { [TOPICS[0]!]: { qos: 1 }, [TOPICS[1]!]: { qos: 1 }, resubscribe: true });
  f.subscribes[0]!.answer(TOPICS.map((topic) => ({ topic, qos: 1 })));
  await sub.first;
  assert.equal(sub.active(), true);
  f.close();
  assert.equal(sub.active(), false, 'not subscribed without a connection');
  f.connect(true); // Mosquitto after a restart: session restored, shared subscriptions gone
  assert.equal(f.subscribes.length, 2, 'subscribed again although sessionPresent=true');
  assert.equal(sub.active(), false, 'only a SUBACK on this connection counts');
  f.subscribes[1]!.answer(TOPICS.map((topic) => ({ topic, qos: 1 })));
  await tick();
  assert.equal(sub.active(), true);
  assert.deepEqual(
    changes.map(([ok]) => ok),
    [false, true, false, true],
  );
  sub.stop();
});

test('keepSubscribed: a SUBACK of an earlier connection does not count; a refusal rejects the first grant', async () => {
  const f = fakeClient();
  const sub = keepSubscribed(f.client, TOPICS, { qos: 1, log: silentLogger, retryMs: 60_000 });
  f.connect(false);
  f.close();
  f.connect(false);
  f.subscribes[0]!.answer(TOPICS.map((topic) => ({ topic, qos: 1 })));
  await tick();
  assert.equal(sub.active(), false);
  f.subscribes[1]!.answer([
    { topic: TOPICS[0]!, qos: 1 },
    { topic: TOPICS[1]!, qos: 0x80 },
  ]);
  await assert.rejects(sub.first, /subscription refused/);
  assert.equal(sub.active(), false);
  sub.stop();
});

test('publishPacketSize matches the encoded PUBLISH packet', () => {
  for (const [topic, size, qos, protocolVersion] of [
    ['vehicles/car-0001/telemetry', 600, 1, 5],
    ['vehicles/car-0001/telemetry', 1_000_000, 1, 4],
    ['t', 100, 0, 4],
    ['vehicles/ü/telemetry', 16_383, 1, 5],
    ['vehicles/x/telemetry', 2_097_152, 1, 5],
  ] as const) {
    const encoded = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(size), qos, messageId: 1, dup: false, retain: false }, { protocolVersion });
    assert.equal(publishPacketSize(topic, size, { qos, protocolVersion }), encoded.length, `${topic} ${size} v${protocolVersion}`);
  }
});

test('withPubackReasons hands the PUBACK reason code to the publish callback', async () => {
  const e = new EventEmitter();
  let id = 0;
  const client = Object.assign(e, {
    // Like mqtt.js: the PUBACK is seen as a received packet, then the callback gets the stored PUBLISH.
    publish(topic: string, _m: string, _o: unknown, cb: (err?: Error, packet?: unknown) => void) {
      const messageId = ++id;
      setImmediate(() => {
        e.emit('packetreceive', { cmd: 'puback', messageId, reasonCode: topic === 'nobody' ? 16 : 0 });
        cb(undefined, { cmd: 'publish', topic, messageId });
      });
      return client;
    },
  }) as unknown as MqttClient;
  const wrapped = withPubackReasons(client);
  const reason = (topic: string): Promise<number | undefined> => new Promise((r) => wrapped.publish(topic, 'x', { qos: 1 }, (_err, ack) => r(ack?.reasonCode)));
  assert.deepEqual(await Promise.all([reason('nobody'), reason('vehicles/a/telemetry'), reason('nobody')]), [16, 0, 16]);
});

/**
 * A scripted MQTT 5 peer on a local socket: CONNACK, then a QoS 1 PUBLISH every `everyMs` until
 * `stopAfterMs`; it never answers PINGREQ, as a broker whose PINGRESP is stuck behind a backlog.
 */
async function streamingPeer(everyMs: number, stopAfterMs: number, count = Infinity) {
  const pings: number[] = [];
  const pubacks: number[] = [];
  const server = net.createServer((socket) => {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    let timer: NodeJS.Timeout | undefined;
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') {
        socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false, reasonCode: 0 }, { protocolVersion: 5 }));
        let id = 0;
        const start = Date.now();
        timer = setInterval(() => {
          if (Date.now() - start >= stopAfterMs || id >= count) return clearInterval(timer);
          id = (id % 65_535) + 1;
          socket.write(mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: id, dup: false, retain: false }, { protocolVersion: 5 }));
        }, everyMs);
      } else if (p.cmd === 'pingreq') pings.push(Date.now());
      else if (p.cmd === 'puback') pubacks.push(p.messageId!);
    });
    socket.on('data', (d) => parser.parse(d));
    socket.on('error', () => undefined);
    socket.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, pings, pubacks, close: () => new Promise((r) => server.close(r)) };
}

test('connectWithHeldAcks: PUBLISHes arriving keep the connection alive; silence still times out', async () => {
  const peer = await streamingPeer(100, 3_500);
  const closes: number[] = [];
  const start = Date.now();
  let received = 0;
  const client = await connectWithHeldAcks(`mqtt://127.0.0.1:${peer.port}`, { protocolVersion: 5, keepalive: 1, reconnectPeriod: 0 }, silentLogger, (m) => {
    received++;
    m.ack();
  });
  client.on('close', () => closes.push(Date.now() - start));
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    // mqtt.js alone pings after 1 s without acknowledgements and gives up 0.5 s later.
    assert.deepEqual(closes, [], `the connection stayed up while messages arrived (pings at ${peer.pings.map((t) => t - start).join(', ')} ms)`);
    assert.ok(received >= 20, `${received} messages`);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(closes.length, 1, 'once the peer falls silent and ignores PINGREQ, the keepalive times out');
  } finally {
    client.end(true);
    await peer.close();
  }
});

test('connectWithHeldAcks: PUBACKs leave in arrival order, whatever the order of ack()', async () => {
  const peer = await streamingPeer(2, 10_000, 12);
  const held: HeldMessage[] = [];
  const client = await connectWithHeldAcks(`mqtt://127.0.0.1:${peer.port}`, { protocolVersion: 5, reconnectPeriod: 0 }, silentLogger, (m) => held.push(m));
  try {
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(ok(), what);
    };
    await until('12 messages delivered', () => held.length === 12);
    // Released as Kafka might acknowledge them: the later half first, then the rest backwards.
    for (const i of [6, 7, 8, 9, 10, 11]) held[i]!.ack();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(peer.pubacks, [], 'nothing leaves while the first message is held');
    for (const i of [3, 1]) held[i]!.ack();
    held[0]!.ack();
    await until('PUBACKs of 1 and 2', () => peer.pubacks.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(peer.pubacks, [1, 2], 'the first two; 3 is still held');
    for (const i of [5, 4, 2, 2]) held[i]!.ack();
    await until('all 12 PUBACKs', () => peer.pubacks.length >= 12);
    assert.deepEqual(peer.pubacks, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  } finally {
    client.end(true);
    await peer.close();
  }
});
