/**
 * One MQTT 5 connection and the cars it carries (one car, or a gateway's cars). Its cars are one
 * simulated fleet (@pitwall/simulator createFleet: the simulator's signal model and failure
 * effects), ticked at the connection's due times; each reading goes out at QoS 1 on
 * `vehicles/<id>/telemetry` with the simulator's payload. Counts every publish's outcome and the
 * acknowledged readings per car; alerts and receipts go through the inbox. Readings wait in the
 * connection beyond the broker's Receive Maximum (send-window.ts). Over TLS it presents
 * its own certificate (identities.ts) and verifies the broker's against the fleet CA.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { createFleet, hashSeed, telemetryTopic, toPayload, type Fleet, type FailureSpec } from '@pitwall/simulator';
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
  const topics = fleet.vehicleIds.map(telemetryTopic);
  const acked = new Uint32Array(spec.cars);
  let inFlight = 0;
  const window = createSendWindow();
  let connected = false;
  let everConnected = false;

  const client: MqttClient = mqtt.connect(deps.url, {
    protocolVersion: 5,
    clientId: spec.label,
    clean: true,
    keepalive: 60,
    reconnectPeriod: 2000,
    connectTimeout: 30_000,
    ...(deps.username ? { username: deps.username } : {}),
    ...(deps.password ? { password: deps.password } : {}),
    // The context holds the CA, certificate and key (made once per car, before the ramp).
    ...(deps.tls ? { secureContext: deps.tls.secureContext, rejectUnauthorized: true } : {}),
  });
  const inbox: Inbox = createInbox({
    vehicleIds: fleet.vehicleIds,
    sendReceipt: (topic, payload) =>
      client.publish(topic, payload, { qos: 1 }, (err) => {
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
  client.on('message', (topic, payload, packet) => inbox.handle(topic, payload, packet));
  client.on('connect', (connack) => {
    // Each CONNACK may say another maximum (a different node of a cluster, a reconfigured broker).
    const max = connack.properties?.receiveMaximum ?? PROTOCOL_RECEIVE_MAXIMUM;
    if (Number.isInteger(max) && max >= 1 && max <= PROTOCOL_RECEIVE_MAXIMUM) window.setLimit(max);
    connected = true;
    counters.up += 1;
    counters.connects += 1;
    if (everConnected) return; // mqtt.js subscribes again by itself on reconnect
    everConnected = true;
    for (const batch of subscriptionBatches(fleet.vehicleIds)) client.subscribe(batch, { qos: 1 });
    deps.onFirstConnect();
  });
  // mqtt.js calls a publish back with the PUBLISH it stored, not the PUBACK: reasons are read here.
  const unrouted = new Set<number>();
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback' && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) unrouted.add(packet.messageId);
  });
  let closing = false;
  client.on('close', () => {
    unrouted.clear();
    if (!connected) return;
    connected = false;
    counters.up -= 1;
    if (!closing) counters.disconnects += 1;
  });
  client.on('error', () => (counters.connectErrors += 1));

  const publish = (i: number, payload: string): void => {
    inFlight += 1;
    counters.sent += 1;
    window.submit((done) =>
      client.publish(topics[i]!, payload, { qos: 1 }, (err, packet) => {
        done();
        inFlight -= 1;
        const id = packet && 'messageId' in packet ? packet.messageId : undefined;
        if (err) counters.failed += 1;
        else if (id !== undefined && unrouted.delete(id)) counters.unrouted += 1;
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
      for (let i = 0; i < readings.length; i++) publish(i, JSON.stringify(toPayload(readings[i]!)));
    },
    inFlight: () => inFlight,
    acked: () => acked,
    withState: () => inbox.withState(),
    async close(clearState) {
      closing = true;
      if (connected && clearState) {
        const clears = inbox.withState().map((id) => client.publishAsync(`vehicles/${id}/maintenance`, '', { qos: 1, retain: true }).catch(() => undefined));
        await Promise.all(clears);
      }
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
