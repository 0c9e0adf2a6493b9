import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SENSOR_NAMES, createLogger, silentLogger } from '@pitwall/common';
import { createFleet, type Reading } from '../src/fleet.js';
import type { GroundTruthEvent } from '../src/failures.js';
import { createSimulator, type PublishClient } from '../src/simulator.js';

const T0 = 1_700_000_000_000;

interface Sent {
  topic: string;
  payload: Record<string, number>;
  qos: number;
}

/** A stand-in for a connected MqttClient: acknowledges asynchronously, or holds acks until released. */
function fakeClient(opts: { hold?: boolean; fail?: (topic: string, n: number) => 'error' | 'throw' | undefined } = {}) {
  const sent: Sent[] = [];
  const held: (() => void)[] = [];
  let acked = 0;
  const client: PublishClient = {
    publish(topic, message, o, callback) {
      const failure = opts.fail?.(topic, sent.length);
      if (failure === 'throw') throw new Error('client is disconnecting');
      sent.push({ topic, payload: JSON.parse(message) as Record<string, number>, qos: o.qos });
      const ack = (): void => {
        if (failure === 'error') return callback(new Error('broker refused'));
        acked += 1;
        callback();
      };
      if (opts.hold) held.push(ack);
      else setImmediate(ack);
      return client;
    },
  };
  return {
    client,
    sent,
    acked: () => acked,
    release() {
      for (const ack of held.splice(0)) ack();
    },
  };
}

test('publishes one JSON reading per car per tick to vehicles/{id}/telemetry with QoS 1', async () => {
  const fake = fakeClient();
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 3, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 10_000 });
  sim.start();
  await sim.done;
  assert.deepEqual(sim.stats(), { published: 30, ticks: 10, failed: 0, inFlight: 0 });
  assert.equal(fake.acked(), 30);
  assert.deepEqual(new Set(fake.sent.map((s) => s.topic)), new Set(['vehicles/car-0001/telemetry', 'vehicles/car-0002/telemetry', 'vehicles/car-0003/telemetry']));
  assert.ok(fake.sent.every((s) => s.qos === 1));
  assert.deepEqual(
    [...new Set(fake.sent.map((s) => s.payload.ts))],
    Array.from({ length: 10 }, (_, k) => T0 + k * 1000),
  );
  for (const s of fake.sent) assert.deepEqual(Object.keys(s.payload), ['ts', ...SENSOR_NAMES]);
});

test('publishes exactly what the fleet generates for those timestamps', async () => {
  const fake = fakeClient();
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 2, seed: 5 }), log: silentLogger, ratePerCarHz: 2, timeScale: 10_000, startTs: T0, durationMs: 3000, qos: 0 });
  sim.start();
  await sim.done;
  const twin = createFleet({ cars: 2, seed: 5 });
  const expected = [0, 500, 1000, 1500, 2000, 2500].flatMap((dt) => twin.tick(T0 + dt));
  assert.deepEqual(
    fake.sent.map((s) => s.payload),
    expected.map((r) => ({ ts: r.ts, ...r.values })),
  );
  assert.ok(fake.sent.every((s) => s.qos === 0));
});

test('done waits until every publish is acknowledged', async () => {
  const fake = fakeClient({ hold: true });
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 4, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 5000 });
  let finished = false;
  void sim.done.then(() => (finished = true)); // a rejection would fail this test as unhandled
  sim.start();
  while (fake.sent.length < 20) await sleep(1);
  await sleep(20);
  assert.equal(finished, false);
  assert.deepEqual(sim.stats(), { published: 0, ticks: 5, failed: 0, inFlight: 20 });
  fake.release();
  await sim.done;
  assert.deepEqual(sim.stats(), { published: 20, ticks: 5, failed: 0, inFlight: 0 });
});

test('ticks wait while too many publishes are unacknowledged', async () => {
  const fake = fakeClient({ hold: true });
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 3, seed: 1 }), log: silentLogger, timeScale: 1e6, startTs: T0, durationMs: 60_000, maxInFlight: 4 });
  sim.start();
  while (fake.sent.length < 6) await sleep(1);
  await sleep(30);
  assert.equal(fake.sent.length, 6, 'two ticks, then wait for acks');
  while (sim.stats().ticks < 60) {
    fake.release();
    await sleep(1);
  }
  fake.release();
  await sim.done;
  assert.equal(sim.stats().published, 180);
});

test('stop() ends a run without a duration and resolves done after the acks', async () => {
  const fake = fakeClient();
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 2, seed: 1 }), log: silentLogger, timeScale: 1000, startTs: T0 });
  sim.start();
  while (sim.stats().ticks < 5) await sleep(1);
  await sim.stop();
  await sim.done;
  const after = sim.stats();
  assert.equal(after.inFlight, 0);
  assert.equal(after.published, after.ticks * 2);
  await sleep(20);
  assert.equal(sim.stats().ticks, after.ticks, 'no tick after stop');
  await sim.stop(); // idempotent
});

test('stop() before start() resolves at once', async () => {
  const sim = createSimulator({ client: fakeClient().client, fleet: createFleet({ cars: 1, seed: 1 }), log: silentLogger });
  await sim.stop();
  await sim.done;
  assert.equal(sim.stats().ticks, 0);
});

test('each failure is announced once, at the first tick at or after its onset, in the log and to groundTruth', async () => {
  const fake = fakeClient();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: 'simulator', level: 'info', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const fleet = createFleet({
    cars: 3,
    seed: 1,
    failures: [
      { vehicleId: 'car-0002', mode: 'tire_leak', onsetTs: T0 + 2500, sensor: 'tire_pressure_2_1' },
      { vehicleId: 'car-0003', mode: 'engine_vibration', onsetTs: T0 - 60_000 },
      { vehicleId: 'car-0001', mode: 'coolant_overheat', onsetTs: T0 + 99_000 },
    ],
  });
  const seen: [GroundTruthEvent, number][] = [];
  const sim = createSimulator({
    client: fake.client,
    fleet,
    log,
    timeScale: 10_000,
    startTs: T0,
    durationMs: 6000,
    groundTruth: (e) => seen.push([e, fake.sent.length]),
  });
  sim.start();
  await sim.done;
  assert.deepEqual(seen, [
    [{ vehicleId: 'car-0003', mode: 'engine_vibration', onsetTs: T0 - 60_000 }, 0],
    [{ vehicleId: 'car-0002', mode: 'tire_leak', onsetTs: T0 + 2500, sensor: 'tire_pressure_2_1' }, 9],
  ]);
  const injected = lines.filter((l) => l.msg === 'failure injected').map(({ vehicleId, mode, onsetTs, sensor, level }) => ({ vehicleId, mode, onsetTs, sensor, level }));
  assert.deepEqual(injected, [
    { vehicleId: 'car-0003', mode: 'engine_vibration', onsetTs: T0 - 60_000, sensor: undefined, level: 'info' },
    { vehicleId: 'car-0002', mode: 'tire_leak', onsetTs: T0 + 2500, sensor: 'tire_pressure_2_1', level: 'info' },
  ]);
});

test('publish errors are counted and the run still finishes', async () => {
  const fake = fakeClient({ fail: (topic, n) => (topic.includes('car-0002') ? 'error' : n === 0 ? 'throw' : undefined) });
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 3, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 4000 });
  sim.start();
  await sim.done;
  assert.deepEqual(sim.stats(), { published: 7, ticks: 4, failed: 5, inFlight: 0 });
});

const reading = (vehicleId: string, ts: number, speed: number): Reading => ({
  vehicleId,
  ts,
  values: Object.fromEntries(SENSOR_NAMES.map((n) => [n, n === 'speed' ? speed : 1])),
});

test('replay publishes readings in event-time order, keeping timestamps unless startTs is given', async () => {
  const replay = [reading('b', 3000, 3), reading('a', 1000, 1), reading('b', 1000, 2), reading('a', 2500, 4), reading('c', 9000, 5)];
  const cases: { startTs?: number; durationMs?: number; want: [string, number, number][] }[] = [
    {
      want: [
        ['a', 1000, 1],
        ['b', 1000, 2],
        ['a', 2500, 4],
        ['b', 3000, 3],
        ['c', 9000, 5],
      ],
    },
    {
      startTs: T0,
      durationMs: 2000,
      want: [
        ['a', T0, 1],
        ['b', T0, 2],
        ['a', T0 + 1500, 4],
      ],
    },
  ];
  for (const c of cases) {
    const fake = fakeClient();
    const sim = createSimulator({
      client: fake.client,
      fleet: createFleet({ cars: 1, seed: 1 }),
      log: silentLogger,
      timeScale: 10_000,
      replay,
      ...(c.startTs === undefined ? {} : { startTs: c.startTs }),
      ...(c.durationMs === undefined ? {} : { durationMs: c.durationMs }),
    });
    sim.start();
    await sim.done;
    assert.deepEqual(
      fake.sent.map((s) => [s.topic.split('/')[1], s.payload.ts, s.payload.speed]),
      c.want,
    );
    assert.equal(sim.stats().ticks, new Set(c.want.map((w) => w[1])).size);
  }
});

test('invalid pacing options are refused', () => {
  const base = { client: fakeClient().client, fleet: createFleet({ cars: 1, seed: 1 }), log: silentLogger };
  assert.throws(() => createSimulator({ ...base, ratePerCarHz: 0 }), /ratePerCarHz/);
  assert.throws(() => createSimulator({ ...base, timeScale: Number.NaN }), /timeScale/);
  assert.throws(() => createSimulator({ ...base, durationMs: -1 }), /durationMs/);
});

/** Answers each publish with `answer(topic, attempt)`: an error, a PUBACK reason code, or undefined (success). */
function scriptedClient(answer: (topic: string, attempt: number) => Error | number | undefined) {
  const attempts = new Map<string, number>();
  const client: PublishClient = {
    publish(topic, message, _o, callback) {
      const key = `${topic} ${(JSON.parse(message) as { ts: number }).ts}`;
      const n = attempts.get(key) ?? 0;
      attempts.set(key, n + 1);
      const a = answer(topic, n);
      setImmediate(() => (a instanceof Error ? callback(a) : callback(undefined, { reasonCode: a ?? 0 })));
      return client;
    },
  };
  return { client, attempts };
}

test('a reading is sent again while no subscriber matches (reason 16) or the connection dropped, then counted once', async () => {
  const fake = scriptedClient((topic, n) => (topic.includes('car-0001') && n < 2 ? 16 : topic.includes('car-0002') && n < 1 ? new Error('Connection closed') : undefined));
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 3, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 2000, resendDelayMs: 1 });
  sim.start();
  await sim.done;
  assert.deepEqual(sim.stats(), { published: 6, ticks: 2, failed: 0, inFlight: 0 });
  assert.deepEqual([...fake.attempts.values()].sort(), [1, 1, 2, 2, 3, 3]);
});

test('stop() gives a reading waiting to be resent one last try, then counts it as failed', async () => {
  const fake = scriptedClient(() => 16);
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 1, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 1000, resendDelayMs: 60_000 });
  sim.start();
  await sleep(20);
  await sim.stop();
  assert.deepEqual(sim.stats(), { published: 0, ticks: 1, failed: 1, inFlight: 0 });
  assert.deepEqual([...fake.attempts.values()], [2]);
});

test("a reading over the broker's maximum packet size fails at once and is never handed to the client", async () => {
  const fake = fakeClient();
  const sim = createSimulator({ client: fake.client, fleet: createFleet({ cars: 2, seed: 1 }), log: silentLogger, timeScale: 10_000, startTs: T0, durationMs: 1000, maxPacketSize: () => 100 });
  sim.start();
  await sim.done;
  assert.equal(fake.sent.length, 0);
  assert.deepEqual(sim.stats(), { published: 0, ticks: 1, failed: 2, inFlight: 0 });
});
