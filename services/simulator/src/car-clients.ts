/**
 * The fleet's MQTT side: one connection per car, each with the car's own certificate, behind the
 * one small client interface the simulator and the inbox use (publish, subscribe, message events).
 * The broker's ACL lets a car use only vehicles/<its id>/..., so every publish goes out on the
 * connection of the car its topic names, and each car subscribes only its own topics.
 *
 * A single connection (a gateway identity, or a broker without client certificates) is the same
 * interface over one client: `singleClient`.
 */
import type { IClientOptions, IClientSubscribeOptions, IPublishPacket, MqttClient } from 'mqtt';
import { connectMqtt, serverMaximumPacketSize, withPubackReasons, type Logger, type PubackAwareClient } from '@pitwall/common';

type MessageListener = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

export interface FleetClient {
  publish(topic: string, message: string, opts: { qos: 0 | 1 }, callback: (err?: Error, ack?: { reasonCode?: number }) => void): unknown;
  on(event: 'message', listener: MessageListener): unknown;
  off(event: 'message', listener: MessageListener): unknown;
  subscribeAsync(topics: string[], opts: IClientSubscribeOptions): Promise<unknown>;
  /** Every connection is up. */
  readonly connected: boolean;
  readonly connections: number;
  maxPacketSize(): number | undefined;
  endAsync(): Promise<void>;
}

/** The vehicle id a vehicles/<id>/... topic names. */
const vehicleOf = (topic: string): string | undefined => {
  const m = /^vehicles\/([^/]+)\//.exec(topic);
  return m?.[1];
};

export function singleClient(client: MqttClient): FleetClient {
  const puback = withPubackReasons(client);
  return {
    publish: (topic, message, opts, cb) => puback.publish(topic, message, opts, cb),
    on: (event, l) => client.on(event, l),
    off: (event, l) => client.off(event, l),
    subscribeAsync: (topics, opts) => client.subscribeAsync(topics, opts),
    get connected() {
      return client.connected;
    },
    connections: 1,
    maxPacketSize: () => serverMaximumPacketSize(client),
    endAsync: () => client.endAsync(),
  };
}

export interface CarConnectionsOptions {
  url: string;
  vehicleIds: readonly string[];
  /** Options shared by every car (protocol, CA, reconnect). */
  base: IClientOptions;
  /** The car's certificate and key (PEM). */
  credentials: (vehicleId: string) => { cert: string; key: string; ca?: string };
  /** Client id for a car; default `<id>-<suffix>`. */
  clientId: (vehicleId: string) => string;
  log: Logger;
  /** Connections opened at once. Default 100. */
  concurrency?: number;
}

/** Opens one connection per car (resolves once all are connected; rejects on the first failure). */
export async function connectCars(o: CarConnectionsOptions): Promise<FleetClient> {
  const clients = new Map<string, { client: MqttClient; puback: PubackAwareClient }>();
  const ids = [...o.vehicleIds];
  const concurrency = o.concurrency ?? 100;
  try {
    for (let i = 0; i < ids.length; i += concurrency) {
      await Promise.all(
        ids.slice(i, i + concurrency).map(async (id) => {
          const client = await connectMqtt(o.url, { ...o.base, ...o.credentials(id), clientId: o.clientId(id) }, o.log);
          clients.set(id, { client, puback: withPubackReasons(client) });
        }),
      );
    }
  } catch (err) {
    await Promise.all([...clients.values()].map((c) => c.client.endAsync(true)));
    throw err;
  }
  const all = [...clients.values()];
  const first = all[0]!.client;
  return {
    publish(topic, message, opts, cb) {
      const c = clients.get(vehicleOf(topic) ?? '');
      if (!c) {
        cb(new Error(`no connection for topic ${topic}`));
        return undefined;
      }
      return c.puback.publish(topic, message, opts, cb);
    },
    on(event, l) {
      for (const c of all) c.client.on(event, l);
    },
    off(event, l) {
      for (const c of all) c.client.off(event, l);
    },
    // Each car subscribes only the filters that can name it: its own topics, with a `+` in the
    // vehicle level replaced by its id.
    subscribeAsync: (topics, opts) =>
      Promise.all(
        [...clients].map(([id, c]) => {
          const own = topics.map((t) => t.replace(/^vehicles\/\+\//, `vehicles/${id}/`)).filter((t) => vehicleOf(t) === id);
          return own.length > 0 ? c.client.subscribeAsync(own, opts) : Promise.resolve([]);
        }),
      ),
    get connected() {
      return all.every((c) => c.client.connected);
    },
    connections: all.length,
    maxPacketSize: () => serverMaximumPacketSize(first),
    endAsync: async () => {
      await Promise.all(all.map((c) => c.client.endAsync()));
    },
  };
}
