/** MQTT client helpers. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { CommonConfig } from './config.js';
import type { Logger } from './log.js';

export function mqttOptions(config: Pick<CommonConfig, 'mqtt'>, extra: IClientOptions = {}): IClientOptions {
  return {
    protocolVersion: 5,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...(config.mqtt.username ? { username: config.mqtt.username } : {}),
    ...(config.mqtt.password ? { password: config.mqtt.password } : {}),
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
  /** Sends the PUBACK to the broker. Idempotent; a no-op once the connection it came on is gone. */
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
 * Relies on mqtt.js internals (_sendPacket); the ingest integration test covers it on a real broker.
 */
export function connectWithHeldAcks(
  url: string,
  options: IClientOptions,
  log: Logger,
  onMessage: (m: HeldMessage) => void,
): Promise<MqttClient> {
  let generation = 0;
  const awaiting = new Set<number>(); // ids whose PUBACK mqtt.js is about to send
  const parked = new Map<number, () => void>(); // id -> send the PUBACK now
  const released = new Set<number>(); // ack() called before mqtt.js tried to send

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
      if (released.delete(id)) {
        send(packet, cb, ...rest);
        return;
      }
      parked.set(id, () => send(packet, undefined, ...rest));
      cb?.();
    };
    client.on('close', () => {
      // Unacked messages of this connection are redelivered by the broker on the next session.
      generation += 1;
      awaiting.clear();
      parked.clear();
      released.clear();
    });
    client.on('message', (topic, payload, packet) => {
      const id = packet.messageId;
      const gen = generation;
      let done = packet.qos === 0 || id === undefined;
      onMessage({
        topic,
        payload,
        ack() {
          if (done || gen !== generation) return;
          done = true;
          const sendNow = parked.get(id!);
          if (sendNow) {
            parked.delete(id!);
            sendNow();
          } else if (awaiting.has(id!)) released.add(id!);
        },
      });
    });
  });
}
