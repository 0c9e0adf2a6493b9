/** MQTT client helpers. */
import mqtt, { type IClientOptions, type IClientPublishOptions, type IConnackPacket, type ISubscriptionMap, type MqttClient } from 'mqtt';
import type { CommonConfig } from './config.js';
import type { Logger } from './log.js';
import type { Readiness } from './readiness.js';

export function mqttOptions(config: Pick<CommonConfig, 'mqtt'>, extra: IClientOptions = {}): IClientOptions {
  return {
    protocolVersion: 5,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...(config.mqtt.username ? { username: config.mqtt.username } : {}),
    ...(config.mqtt.password ? { password: config.mqtt.password } : {}),
    ...(config.mqtt.ca !== undefined ? { ca: config.mqtt.ca } : {}),
    ...(config.mqtt.cert !== undefined ? { cert: config.mqtt.cert, key: config.mqtt.key } : {}),
    rejectUnauthorized: true,
    ...extra,
  };
}

/**
 * Connects and resolves once the first CONNACK arrives; rejects on the first error. `setup` runs
 * before any packet is read: a resumed session delivers its queued messages right after CONNACK,
 * so listeners attached after the promise resolves would miss them.
 */
export function connectMqtt(url: string, options: IClientOptions, log: Logger, setup?: (client: MqttClient) => void): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, options);
    setup?.(client);
    const onError = (err: Error): void => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
    client.once('connect', () => {
      client.off('error', onError);
      client.on('error', (err) => log.warn('mqtt error', { err }));
      client.on('reconnect', () => log.info('mqtt reconnecting', { url }));
      client.on('offline', () => log.warn('mqtt offline', { url }));
      resolve(client);
    });
  });
}

/** A received message whose PUBACK is held back until `ack()` is called. */
export interface HeldMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /**
   * Releases the PUBACK. Idempotent; a no-op once the connection it came on is gone. It goes out
   * once every message received before this one on the connection is released too.
   */
  ack(): void;
}

/**
 * Connects a client whose QoS 1 acknowledgements are sent only when the application calls ack().
 *
 * Why this exists: mqtt.js processes incoming packets one at a time, and its own hooks for deferring
 * acks (customHandleAcks, handleMessage) hold the whole inbound stream until the ack is sent, which
 * would turn ingest into one Kafka round trip per message. Here the inbound stream keeps flowing and
 * only the PUBACK packet itself is parked until the application releases it (after Kafka acked the
 * record). Until then the broker keeps the message in the persistent session and redelivers it if
 * this client dies. Packet ids of parked acks are never reused by the broker before they are acked.
 *
 * PUBACKs leave in the order their PUBLISHes arrived, whatever the order of ack() calls: MQTT
 * requires it (MQTT 5 4.6, 3.1.1 4.6.0-2), and Mosquitto 2.0 leaks in-flight entries on PUBACKs out
 * of order (measured: 68,000 of 300,000 messages left "awaiting PUBACK" after all were acked; its
 * linear search over them then kept it at 100 % CPU for minutes after an overload, refusing cars).
 * A slow record therefore holds back the PUBACKs behind it, at most the receive maximum.
 *
 * Relies on mqtt.js internals (_sendPacket); the ingest integration test covers it on a real broker.
 */
export function connectWithHeldAcks(
  url: string,
  options: IClientOptions,
  log: Logger,
  onMessage: (m: HeldMessage) => void,
  /** Messages delivered whose ack() has not been called, on the current connection (kept up to date here). */
  unacked: { value: number } = { value: 0 },
): Promise<MqttClient> {
  let generation = 0;
  const awaiting = new Set<number>(); // ids whose PUBACK mqtt.js is about to send
  const parked = new Map<number, () => void>(); // id -> send the PUBACK now
  // QoS 1 messages of this connection in arrival order, from `head` on; released: ack() was called.
  let order: { id: number; released: boolean }[] = [];
  let head = 0;
  const flush = (): void => {
    while (head < order.length && order[head]!.released) {
      const sendNow = parked.get(order[head]!.id);
      if (!sendNow) return; // mqtt.js has not handed over this PUBACK yet: flushed when it does
      parked.delete(order[head]!.id);
      head += 1;
      sendNow();
    }
    if (head > 1024 && head * 2 > order.length) {
      order = order.slice(head);
      head = 0;
    }
  };

  const opts: IClientOptions = {
    ...options,
    customHandleAcks: (_topic, _message, packet: { messageId?: number }, done) => {
      if (packet.messageId !== undefined) awaiting.add(packet.messageId);
      done(0);
    },
  };
  return connectMqtt(url, opts, log, (client) => {
    const internals = client as unknown as {
      _sendPacket(packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]): void;
    };
    const send = internals._sendPacket.bind(client);
    internals._sendPacket = (packet, cb, ...rest) => {
      const id = packet.messageId;
      if (packet.cmd !== 'puback' || id === undefined || !awaiting.delete(id)) {
        send(packet, cb, ...rest);
        return;
      }
      parked.set(id, () => send(packet, undefined, ...rest));
      cb?.();
      flush();
    };
    // mqtt.js takes only acknowledgements and PINGRESP as signs of life, not PUBLISHes: a client that
    // only receives pings every keepalive and needs the PINGRESP within half of it. Under a backlog
    // the PINGRESP waits behind up to a receive maximum of PUBLISHes, times out, and the reconnect
    // redelivers everything in flight as duplicates (overload.e2e: 207,756 in one run). Any packet
    // received proves the connection alive; checked at most once a second.
    let alive = 0;
    client.on('packetreceive', () => {
      const now = Date.now();
      if (now - alive < 1000) return;
      alive = now;
      client.reschedulePing();
    });
    client.on('close', () => {
      // Unacked messages of this connection are redelivered by the broker on the next session.
      generation += 1;
      unacked.value = 0;
      awaiting.clear();
      parked.clear();
      order = [];
      head = 0;
    });
    client.on('message', (topic, payload, packet) => {
      const id = packet.messageId;
      const gen = generation;
      let done = packet.qos === 0 || id === undefined;
      const entry = done ? undefined : { id: id!, released: false };
      if (entry) {
        order.push(entry);
        unacked.value += 1;
      }
      onMessage({
        topic,
        payload,
        ack() {
          if (done || gen !== generation) return;
          done = true;
          unacked.value -= 1;
          entry!.released = true;
          flush();
        },
      });
    });
  });
}

/** Condition `name` of `readiness` follows the connection: failing from a close until the next CONNACK. */
export function watchMqtt(readiness: Pick<Readiness, 'set'>, client: MqttClient, name = 'mqtt'): void {
  readiness.set(name, client.connected, 'not connected');
  client.on('connect', () => readiness.set(name, true));
  client.on('close', () => readiness.set(name, false, 'connection lost; reconnecting'));
}

export interface KeptSubscription {
  /** True once the broker granted every topic (SUBACK) on the current connection. */
  active(): boolean;
  /** Resolves at the first grant; rejects if the first connection's SUBACK refuses a topic. */
  readonly first: Promise<void>;
  stop(): void;
}

/**
 * Subscribes `topics` on EVERY connection (CONNACK) and tracks whether they are granted on the
 * current one. mqtt.js's own `resubscribe` is not enough: it resubscribes only when CONNACK says
 * sessionPresent=false, and skips topics it believes subscribed. Mosquitto 2.0 restores a persistent
 * session after a restart WITHOUT its shared subscriptions, answering sessionPresent=true, so a
 * `$share/...` subscriber would stay connected and never receive a message again. Subscribing again
 * to an existing subscription is harmless (the broker replaces it).
 */
export function keepSubscribed(
  client: MqttClient,
  topics: readonly string[],
  opts: { qos: 0 | 1 | 2; log: Logger; onChange?: (active: boolean, why?: string) => void; retryMs?: number },
): KeptSubscription {
  const { log } = opts;
  let generation = 0;
  let granted = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let settleFirst: ((err?: Error) => void) | undefined;
  const first = new Promise<void>((resolve, reject) => (settleFirst = (err) => (err ? reject(err) : resolve())));
  first.catch(() => {});
  const setGranted = (ok: boolean, why?: string): void => {
    granted = ok;
    opts.onChange?.(ok, why);
  };
  const subscribe = (): void => {
    clearTimeout(retry);
    if (stopped) return;
    const gen = ++generation;
    // The map form with resubscribe: true makes mqtt.js send the SUBSCRIBE even for topics it
    // already holds in its own resubscribe list.
    const map: ISubscriptionMap = Object.fromEntries(topics.map((t) => [t, { qos: opts.qos }]));
    map.resubscribe = true;
    client.subscribeAsync(map).then(
      (grants) => {
        if (gen !== generation || stopped) return;
        const refused = grants.filter((g) => g.qos > 2);
        if (refused.length > 0) return refuse(new Error(`subscription refused: ${JSON.stringify(refused)}`));
        setGranted(true);
        log.info('mqtt subscriptions granted', { topics: topics.length <= 4 ? topics : `${topics.length} topics` });
        settleFirst?.();
        settleFirst = undefined;
      },
      (err: unknown) => {
        if (gen !== generation || stopped) return;
        refuse(err as Error);
      },
    );
  };
  const refuse = (err: Error): void => {
    setGranted(false, `subscription refused: ${err.message}`);
    log.error('mqtt subscription refused or failed; retrying', { err, topics });
    if (settleFirst) {
      settleFirst(err);
      settleFirst = undefined;
    }
    if (client.connected) retry = setTimeout(subscribe, opts.retryMs ?? 5_000);
  };
  const onClose = (): void => {
    generation += 1;
    clearTimeout(retry);
    setGranted(false, 'connection lost');
  };
  setGranted(false, 'not yet subscribed');
  client.on('connect', subscribe);
  client.on('close', onClose);
  if (client.connected) subscribe();
  return {
    active: () => granted,
    first,
    stop() {
      stopped = true;
      clearTimeout(retry);
      client.off('connect', subscribe);
      client.off('close', onClose);
    },
  };
}

const varintBytes = (n: number): number => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);

/** Size in bytes of an MQTT PUBLISH packet carrying `payloadBytes` on `topic`. */
export function publishPacketSize(topic: string, payloadBytes: number, opts: { qos: 0 | 1 | 2; protocolVersion?: number; propertiesBytes?: number }): number {
  const props = opts.protocolVersion === 5 ? varintBytes(opts.propertiesBytes ?? 0) + (opts.propertiesBytes ?? 0) : 0;
  const remaining = 2 + Buffer.byteLength(topic) + (opts.qos > 0 ? 2 : 0) + props + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

/** The Maximum Packet Size the broker advertised in its MQTT 5 CONNACK; undefined when it set none (or MQTT 3.1.1). */
export function serverMaximumPacketSize(client: MqttClient): number | undefined {
  return (client as unknown as { connackPacket?: IConnackPacket }).connackPacket?.properties?.maximumPacketSize;
}

/** MQTT 5 PUBACK reason: accepted, but no subscription matched, so nobody gets the message. */
export const NO_MATCHING_SUBSCRIBERS = 16;

export interface PubackAwareClient {
  publish(topic: string, message: string | Buffer, opts: IClientPublishOptions, callback: (err?: Error, ack?: { reasonCode?: number }) => void): unknown;
}

/**
 * A client whose QoS 1 publish callbacks get the PUBACK's reason code. mqtt.js calls back with the
 * PUBLISH it stored, not the PUBACK, so reason 16 (no matching subscribers) would be invisible; yet
 * that is what Mosquitto answers after a restart until ingest has subscribed again (it restores
 * sessions without their shared subscriptions).
 */
export function withPubackReasons(client: MqttClient): PubackAwareClient {
  const reasons = new Map<number, number>(); // message id -> non-zero reason of its PUBACK
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback' && packet.messageId !== undefined && packet.reasonCode) reasons.set(packet.messageId, packet.reasonCode);
  });
  client.on('close', () => reasons.clear());
  return {
    publish(topic, message, opts, callback) {
      return client.publish(topic, message, opts, (err, packet) => {
        const id = packet && 'messageId' in packet ? packet.messageId : undefined;
        const reasonCode = id === undefined ? undefined : reasons.get(id);
        if (id !== undefined) reasons.delete(id);
        callback(err ?? undefined, { reasonCode: reasonCode ?? 0 });
      });
    },
  };
}
