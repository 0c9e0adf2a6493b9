/**
 * The load generator's lean MQTT 5 client (services/loadgen/src/car-client.ts) against every broker
 * implementation (support/brokers.ts), each private: a car with its own certificate publishes QoS 1
 * readings that a reader receives byte for byte, gets its PUBACK reasons, receives an alert on its
 * own topic, is refused another car's topic, and after a kill -9 and restart of the broker
 * reconnects, subscribes again and has every publish acknowledged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import mqtt from 'mqtt';
import { connectCar, type CarClient, type CarClientHandlers } from '@pitwall/loadgen';
import { BROKERS } from './support/brokers.js';
import { tlsAs } from './support/identities.js';
import { runId, waitFor } from './support/stack.js';

type Outcome = { err: Error | null; reason: number };

for (const impl of BROKERS) {
  test(`car client on ${impl.kind}: readings, PUBACK reasons, alerts, a refused topic, kill -9 and restart`, { timeout: 240_000 }, async (t) => {
    const id = runId();
    const broker = await impl.start(id);
    t.after(() => broker.stop());
    const car = `cc${id}-0001`;
    const other = `cc${id}-0002`;
    const events = { connects: 0, closes: 0, errors: 0, messages: [] as { topic: string; payload: string }[] };
    const handlers: CarClientHandlers = {
      onConnect: () => void events.connects++,
      onMessage: (topic, payload) => void events.messages.push({ topic, payload: payload.toString('utf8') }),
      onClose: () => void events.closes++,
      onError: () => void events.errors++,
    };
    const client: CarClient = connectCar({ url: broker.url, clientId: car, keepaliveS: 10, reconnectMs: 300, secureContext: createSecureContext(await tlsAs(broker.url, 'car', car)) }, handlers);
    t.after(() => client.end());
    await waitFor('the car connected', () => (events.connects === 1 ? true : undefined), 30_000, 50);
    const topic = Buffer.from(`vehicles/${car}/telemetry`);
    const publish = (payload: string): Promise<Outcome> => new Promise((resolve) => client.publish(topic, payload, (err, reason) => resolve({ err, reason })));

    // Nobody reads yet: acknowledged with 16 (no matching subscribers) or 0, never an error.
    for (const o of await Promise.all(Array.from({ length: 20 }, (_, i) => publish(`{"n":${i}}`)))) {
      assert.equal(o.err, null);
      assert.ok(o.reason === 16 || o.reason === 0, `reason ${o.reason}`);
    }

    // A reader (ingest's identity) receives every reading byte for byte, in order; PUBACKs say 0.
    const read: string[] = [];
    const reader = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `e2e-reader-${id}`, clean: true, ...(await tlsAs(broker.url, 'service', 'ingest')) });
    t.after(() => reader.endAsync(true));
    reader.on('message', (_t, payload) => read.push(payload.toString('utf8')));
    await reader.subscribeAsync(`vehicles/${car}/telemetry`, { qos: 1 });
    const payloads = Array.from({ length: 300 }, (_, i) => JSON.stringify({ ts: 1_700_000_000_000 + i, speed: i / 7, note: i % 50 === 0 ? 'é€'.repeat(i) : '' }));
    const outcomes = await Promise.all(payloads.map(publish));
    assert.deepEqual(
      outcomes.map((o) => [o.err, o.reason]),
      payloads.map(() => [null, 0]),
    );
    await waitFor('the reader got all 300', () => (read.length >= 300 ? true : undefined), 10_000, 50);
    assert.deepEqual(read, payloads);

    // An alert from dispatch on the car's own topic reaches it (and its PUBACK lets the broker move on).
    client.subscribe([`vehicles/${car}/alerts`, `vehicles/${car}/maintenance`]);
    const dispatcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `e2e-dispatch-${id}`, ...(await tlsAs(broker.url, 'service', 'dispatch')) });
    t.after(() => dispatcher.endAsync(true));
    const alert = (n: number): string => JSON.stringify({ incident_id: `inc-${id}-${n}`, revision: 1, severity: 'HIGH' });
    let sentAlerts = 0;
    await waitFor(
      'an alert on the car',
      async () => {
        if (events.messages.length > 0) return true;
        await dispatcher.publishAsync(`vehicles/${car}/alerts`, alert(sentAlerts++), { qos: 1 });
        return undefined;
      },
      10_000,
      200,
    );
    assert.equal(events.messages[0]!.topic, `vehicles/${car}/alerts`);
    assert.equal(events.messages[0]!.payload, alert(0));

    // kill -9 mid-stream: publishes keep being made; after the restart every one is acknowledged,
    // and the alert subscription is back.
    const during: Promise<Outcome>[] = [];
    const stream = setInterval(() => during.push(publish(`{"during":${during.length}}`)), 20);
    await new Promise((r) => setTimeout(r, 500));
    await broker.kill();
    await new Promise((r) => setTimeout(r, 1_000));
    await broker.start();
    await waitFor('the car reconnected', () => (events.connects === 2 ? true : undefined), 30_000, 50);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(stream);
    await waitFor('every publish acknowledged after the restart', () => (client.pending() === 0 ? true : undefined), 30_000, 50);
    const settled = await Promise.all(during);
    assert.ok(settled.length > 50, `${settled.length} publishes around the restart`);
    assert.deepEqual(
      settled.filter((o) => o.err !== null),
      [],
    );
    assert.equal(client.pending(), 0);
    assert.equal(events.closes, 1);
    const before = events.messages.length;
    await waitFor(
      'an alert after the restart',
      async () => {
        if (events.messages.length > before) return true;
        await dispatcher.publishAsync(`vehicles/${car}/alerts`, alert(sentAlerts++), { qos: 1 }).catch(() => undefined);
        return undefined;
      },
      30_000,
      300,
    );

    // Another car's topic: Mosquitto acknowledges with 135 (not authorized), which fails the
    // publish; HiveMQ disconnects the client instead.
    const closesBefore = events.closes;
    const refused = await new Promise<Outcome | 'closed'>((resolve, reject) => {
      const poll = setInterval(() => events.closes > closesBefore && done('closed'), 50);
      const timer = setTimeout(() => done(new Error('neither a PUBACK nor a disconnect within 10 s')), 10_000);
      const done = (o: Outcome | 'closed' | Error): void => {
        clearInterval(poll);
        clearTimeout(timer);
        if (o instanceof Error) reject(o);
        else resolve(o);
      };
      client.publish(Buffer.from(`vehicles/${other}/telemetry`), '{}', (err, reason) => done({ err, reason }));
    });
    if (refused === 'closed') assert.equal(impl.kind, 'hivemq', 'only HiveMQ disconnects on an unauthorized publish');
    else {
      assert.ok(refused.err instanceof Error, 'the publish failed');
      assert.equal(refused.reason, 135);
    }
  });
}
