/**
 * One MQTT 5 connection and the cars it carries (one car, or a gateway's cars). Its cars are one
 * simulated fleet (@pitwall/simulator createFleet: the simulator's signal model and failure
 * effects), ticked at the connection's due times; each reading goes out at QoS 1 on
 * `vehicles/<id>/telemetry` with the simulator's payload. Counts every publish's outcome and the
 * acknowledged readings per car; alerts and receipts go through the inbox. Readings wait in the
 * connection beyond the broker's Receive Maximum (send-window.ts). The MQTT client is car-client.ts;
 * over TLS it presents its own certificate (identities.ts) and verifies the broker's against the
 * fleet CA.
 */
import { createFleet, hashSeed, telemetryTopic, payloadJson, type Fleet, type FailureSpec } from '@pitwall/simulator';
import { connectCar, type CarClient } from './car-client.js';
import { connectErrorKind, ERROR_COUNTER } from './connect-errors.js';
import { createInbox, subscriptionBatches, type Inbox } from './inbox.js';
import type { Tls } from './identities.js';
import type { AlertEvent, Counters } from './messages.js';
import type { ConnectionSpec } from './partition.js';
import { createSendWindow, PROTOCOL_RECEIVE_MAXIMUM } from './send-window.js';

/** MQTT 5 PUBACK reason: accepted, but no subscription matched (no ingest), so nobody gets it. */
const NO_MATCHING_SUBSCRIBERS = 16;

export interface ConnectionDeps {
  spec: ConnectionSpec;
  url: string;
  username?: string;
  password?: string;
  /** CA, certificate and key over TLS; none for a plain broker. */
  tls?: Tls;
  seed: number;
  failures: readonly FailureSpec[];
  counters: Counters;
  onAlert(e: AlertEvent): void;
  /** Called on the first CONNACK (the connection may start publishing). */
  onFirstConnect(): void;
}

export interface Connection {
  readonly fleet: Fleet;
  /** Publishes one reading per car at event time ts. */
  tick(ts: number): void;
  /** Publishes still waiting for their PUBACK, or for room under the broker's Receive Maximum. */
  inFlight(): number;
  /** Acknowledged readings per car, in fleet order. */
  acked(): Uint32Array;
  /** Cars that received a retained maintenance state. */
  withState(): string[];
  /**
   * Disconnects; first clears the retained maintenance state its cars received if `clearState`
   * (a plain broker lets them; with certificates only dispatch may).
   */
  close(clearState: boolean): Promise<void>;
}

export function openConnection(deps: ConnectionDeps): Connection {
  const { spec, counters } = deps;
  const fleet = createFleet({ cars: spec.cars, seed: hashSeed('loadgen', deps.seed, spec.index), idPrefix: spec.label, failures: deps.failures });
  const topics = fleet.vehicleIds.map((id) => Buffer.from(telemetryTopic(id)));
  const acked = new Uint32Array(spec.cars);
  let inFlight = 0;
  const window = createSendWindow();
  let connected = false;
  let everConnected = false;

  const client: CarClient = connectCar(
    {
      url: deps.url,
      clientId: spec.label,
      keepaliveS: 60,
      reconnectMs: 2000,
      connectTimeoutMs: 30_000,
      ...(deps.username ? { username: deps.username } : {}),
      ...(deps.password ? { password: deps.password } : {}),
      // The context holds the CA, certificate and key (made once per car, before the ramp).
      ...(deps.tls ? { secureContext: deps.tls.secureContext } : {}),
    },
    {
      onConnect: (connack) => {
        // Each CONNACK may say another maximum (a different node of a cluster, a reconfigured broker).
        const max = connack.properties?.receiveMaximum ?? PROTOCOL_RECEIVE_MAXIMUM;
        if (Number.isInteger(max) && max >= 1 && max <= PROTOCOL_RECEIVE_MAXIMUM) window.setLimit(max);
        connected = true;
        counters.up += 1;
        counters.connects += 1;
        if (everConnected) return; // the client subscribes again by itself on reconnect
        everConnected = true;
        for (const batch of subscriptionBatches(fleet.vehicleIds)) client.subscribe(batch);
        deps.onFirstConnect();
      },
      onMessage: (topic, payload, packet) => inbox.handle(topic, payload, packet),
      onClose: () => {
        if (!connected) return;
        connected = false;
        counters.up -= 1;
        if (!closing) counters.disconnects += 1;
      },
      onError: (err) => {
        counters.connectErrors += 1;
        counters[ERROR_COUNTER[connectErrorKind(err)]] += 1;
      },
    },
  );
  const inbox: Inbox = createInbox({
    vehicleIds: fleet.vehicleIds,
    sendReceipt: (topic, payload) =>
      client.publish(Buffer.from(topic), payload, (err) => {
        if (err) counters.receiptFailures += 1;
        else counters.receipts += 1;
      }),
    onAlert: (e) => {
      counters.alerts += 1;
      deps.onAlert(e);
    },
    onDuplicate: () => (counters.duplicateAlerts += 1),
    onMaintenance: () => (counters.maintenance += 1),
  });
  let closing = false;

  const publish = (i: number, payload: string): void => {
    inFlight += 1;
    counters.sent += 1;
    window.submit((done) =>
      client.publish(topics[i]!, payload, (err, reason) => {
        done();
        inFlight -= 1;
        if (err) counters.failed += 1;
        else if (reason === NO_MATCHING_SUBSCRIBERS) counters.unrouted += 1;
        else {
          counters.acked += 1;
          acked[i] = acked[i]! + 1;
        }
      }),
    );
  };

  return {
    fleet,
    tick(ts) {
      const readings = fleet.tick(ts);
      for (let i = 0; i < readings.length; i++) publish(i, payloadJson(readings[i]!));
    },
    inFlight: () => inFlight,
    acked: () => acked,
    withState: () => inbox.withState(),
    async close(clearState) {
      closing = true;
      if (connected && clearState) {
        const clears = inbox.withState().map((id) => new Promise<void>((resolve) => client.publish(Buffer.from(`vehicles/${id}/maintenance`), '', () => resolve(), true)));
        await Promise.all(clears);
      }
      await client.end();
    },
  };
}
