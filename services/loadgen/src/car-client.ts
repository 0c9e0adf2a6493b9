/**
 * A lean MQTT 5 client for simulated cars: what a car needs and nothing more. QoS 1 publishes are
 * framed by hand into one buffer (fixed header, topic, packet id, empty properties, payload) and
 * the frames of one tick go out in one socket write; everything else (CONNECT, SUBSCRIBE, PUBACK
 * of an alert, incoming packets) goes through mqtt-packet, the codec mqtt.js uses.
 *
 * Why not mqtt.js: profiled under the load generator (`--cpu-prof`, 3,000 TLS cars at 1 Hz and
 * 20,000 readings/s over 16 gateways), mqtt.js's per-publish path (outgoing store, stream
 * machinery, keepalive rescheduling, debug calls) took a third of the load generator's CPU, which
 * the pipeline it measures shares.
 *
 * Behaviour, as mqtt.js with `clean: true`: a session per connection; after a lost connection it
 * reconnects every `reconnectMs`, subscribes again and sends every unacknowledged publish again
 * (DUP set when it had gone out), so a reading is delivered at least once. A PUBACK with a reason of
 * 0x80 or more fails its publish. PINGREQ when nothing was sent for three quarters of the keepalive;
 * no packet from the broker for one and a half keepalives closes the socket.
 */
import net from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import mqttPacket, { type IConnackPacket, type IPublishPacket, type Packet } from 'mqtt-packet';

export interface CarClientOptions {
  /** mqtt://host[:port] or mqtts://host[:port]. */
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** TLS: the CA to verify the broker with, and this client's certificate and key. */
  secureContext?: SecureContext;
  keepaliveS?: number;
  reconnectMs?: number;
  connectTimeoutMs?: number;
}

export interface CarClientHandlers {
  onConnect(connack: IConnackPacket): void;
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
  onClose(): void;
  onError(err: Error): void;
}

/** Called with the PUBACK's reason code (0 or 16 succeed), or an error when it failed. */
export type PublishDone = (err: Error | null, reasonCode: number) => void;

export interface CarClient {
  /** A QoS 1 publish. `topic` is the topic's UTF-8 bytes (made once per car: `Buffer.from(topic)`). */
  publish(topic: Buffer, payload: string, done: PublishDone, retain?: boolean): void;
  /** QoS 1 subscriptions, made again after every reconnect. */
  subscribe(topics: readonly string[]): void;
  /** Publishes sent or waiting, not yet acknowledged. */
  pending(): number;
  /** DISCONNECT and close; unacknowledged publishes fail. */
  end(): Promise<void>;
}

const PUBLISH_QOS1 = 0x32;
const RETAIN = 0x01;
const DUP = 0x08;
const MAX_PACKET_ID = 0xffff;

/** Bytes of an MQTT variable byte integer. */
const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4);

/** A QoS 1 PUBLISH (MQTT 5, no properties) in one buffer; the packet id at `frame.length - payload - 3`. */
export function publishFrame(topic: Buffer, payload: string, packetId: number, retain = false): Buffer {
  const payloadBytes = Buffer.byteLength(payload);
  const remaining = 2 + topic.length + 2 + 1 + payloadBytes;
  const frame = Buffer.allocUnsafe(1 + varintBytes(remaining) + remaining);
  let o = 0;
  frame[o++] = PUBLISH_QOS1 | (retain ? RETAIN : 0);
  for (let n = remaining; ;) {
    const byte = n & 0x7f;
    n >>>= 7;
    frame[o++] = n > 0 ? byte | 0x80 : byte;
    if (n === 0) break;
  }
  o = frame.writeUInt16BE(topic.length, o);
  o += topic.copy(frame, o);
  o = frame.writeUInt16BE(packetId, o);
  frame[o++] = 0; // property length
  frame.write(payload, o, 'utf8');
  return frame;
}

/**
 * Splits a byte stream into MQTT packets. PUBACKs, one per reading, are handled here (`onPuback`
 * with the packet id and reason); every other packet goes whole to `other` (mqtt-packet's parser).
 * Throws on a malformed remaining length.
 */
export function createFramer(onPuback: (id: number, reason: number) => void, other: (frame: Buffer) => void): (chunk: Buffer) => void {
  let rest: Buffer | undefined;
  return (chunk) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    rest = undefined;
    let o = 0;
    while (o < buf.length) {
      let remaining = 0;
      let i = o + 1;
      for (let shift = 0; ; shift += 7) {
        if (i >= buf.length) return void (rest = buf.subarray(o));
        if (shift > 21) throw new Error('malformed remaining length');
        const b = buf[i++]!;
        remaining += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
      }
      const end = i + remaining;
      if (end > buf.length) return void (rest = buf.subarray(o));
      if (buf[o] === 0x40 && remaining >= 2) onPuback((buf[i]! << 8) | buf[i + 1]!, remaining > 2 ? buf[i + 2]! : 0);
      else other(buf.subarray(o, end));
      o = end;
    }
  };
}

interface Outgoing {
  frame: Buffer;
  done: PublishDone;
  sent: boolean;
}

export function connectCar(opts: CarClientOptions, on: CarClientHandlers): CarClient {
  const url = new URL(opts.url);
  const secure = url.protocol === 'mqtts:';
  if (!secure && url.protocol !== 'mqtt:') throw new RangeError(`MQTT URL must be mqtt:// or mqtts://, got ${opts.url}`);
  const host = url.hostname;
  const port = Number(url.port || (secure ? 8883 : 1883));
  const keepaliveMs = (opts.keepaliveS ?? 60) * 1000;
  const reconnectMs = opts.reconnectMs ?? 2000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
  const connectFrame = mqttPacket.generate(
    {
      cmd: 'connect',
      protocolVersion: 5,
      clientId: opts.clientId,
      clean: true,
      keepalive: keepaliveMs / 1000,
      ...(opts.username !== undefined ? { username: opts.username } : {}),
      ...(opts.password !== undefined ? { password: Buffer.from(opts.password) } : {}),
    },
    { protocolVersion: 5 },
  );

  const outgoing = new Map<number, Outgoing>();
  /** Packet ids of SUBSCRIBEs awaiting their SUBACK: ids are shared with publishes. */
  const subscribing = new Set<number>();
  let nextId = 1;
  const subscriptions: string[][] = [];
  let socket: net.Socket | undefined;
  let connected = false;
  let ending = false;
  let lastSent = 0;
  let lastReceived = 0;
  let writes: Buffer[] = [];
  let reconnectTimer: NodeJS.Timeout | undefined;
  let connectTimer: NodeJS.Timeout | undefined;
  let closed: Promise<void> = Promise.resolve();

  const flush = (): void => {
    const chunks = writes;
    writes = [];
    if (!socket || chunks.length === 0) return;
    socket.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    lastSent = Date.now();
  };
  /** Queues a frame for this tick's single write. */
  const write = (frame: Buffer): void => {
    if (writes.length === 0) process.nextTick(flush);
    writes.push(frame);
  };
  const allocateId = (): number => {
    for (let tries = 0; tries < MAX_PACKET_ID; tries++) {
      const id = nextId;
      nextId = nextId === MAX_PACKET_ID ? 1 : nextId + 1;
      if (!outgoing.has(id) && !subscribing.has(id)) return id;
    }
    return 0;
  };
  const sendSubscriptions = (topics: readonly string[]): void => {
    const messageId = allocateId();
    subscribing.add(messageId);
    write(mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: topics.map((topic) => ({ topic, qos: 1 })) }, { protocolVersion: 5 }));
  };

  const onPuback = (id: number, code: number): void => {
    const o = outgoing.get(id);
    if (!o) return;
    outgoing.delete(id);
    o.done(code >= 0x80 ? new Error(`PUBACK reason ${code}`) : null, code);
  };
  const onPacket = (packet: Packet): void => {
    switch (packet.cmd) {
      case 'connack': {
        clearTimeout(connectTimer);
        const code = packet.reasonCode ?? 0;
        if (code >= 0x80) {
          on.onError(new Error(`${opts.clientId}: CONNACK refused with reason ${code}`));
          socket?.destroy();
          return;
        }
        connected = true;
        for (const topics of subscriptions) sendSubscriptions(topics);
        for (const o of outgoing.values()) {
          if (o.sent) o.frame[0]! |= DUP;
          o.sent = true;
          write(o.frame);
        }
        on.onConnect(packet);
        return;
      }
      case 'publish':
        if (packet.qos === 1) write(Buffer.from([0x40, 2, packet.messageId! >> 8, packet.messageId! & 0xff]));
        else if (packet.qos === 2) write(Buffer.from([0x50, 2, packet.messageId! >> 8, packet.messageId! & 0xff]));
        on.onMessage(packet.topic, packet.payload as Buffer, packet);
        return;
      case 'pubrel':
        write(Buffer.from([0x70, 2, packet.messageId! >> 8, packet.messageId! & 0xff]));
        return;
      case 'suback':
        subscribing.delete(packet.messageId!);
        return;
      case 'disconnect':
        socket?.destroy();
        return;
      default:
        return; // pingresp
    }
  };

  const open = (): void => {
    reconnectTimer = undefined;
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', onPacket);
    parser.on('error', (err: Error) => {
      on.onError(err);
      s.destroy();
    });
    const s = secure
      ? tls.connect({ host, port, rejectUnauthorized: true, ...(opts.secureContext ? { secureContext: opts.secureContext } : {}), ...(net.isIP(host) ? {} : { servername: host }) })
      : net.connect({ host, port });
    socket = s;
    s.setNoDelay(true);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      lastReceived = Date.now();
      s.write(connectFrame);
      lastSent = Date.now();
    });
    const framer = createFramer(onPuback, (frame) => parser.parse(frame));
    s.on('data', (chunk: Buffer) => {
      lastReceived = Date.now();
      try {
        framer(chunk);
      } catch (err) {
        on.onError(err as Error);
        s.destroy();
      }
    });
    s.on('error', (err: Error) => on.onError(err));
    connectTimer = setTimeout(() => s.destroy(new Error(`${opts.clientId}: no CONNACK within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    closed = new Promise((resolve) =>
      s.once('close', () => {
        clearTimeout(connectTimer);
        socket = undefined;
        writes = [];
        subscribing.clear();
        const was = connected;
        connected = false;
        if (was) on.onClose();
        if (!ending) reconnectTimer = setTimeout(open, reconnectMs);
        resolve();
      }),
    );
  };
  // One timer per client for both directions of the keepalive.
  const keepalive = setInterval(
    () => {
      if (!socket || !connected) return;
      const now = Date.now();
      if (now - lastReceived > keepaliveMs * 1.5) socket.destroy();
      else if (now - lastSent >= keepaliveMs * 0.75) write(Buffer.from([0xc0, 0]));
    },
    Math.max(1000, keepaliveMs / 4),
  );
  keepalive.unref();
  open();

  return {
    publish(topic, payload, done, retain = false) {
      const id = allocateId();
      if (id === 0) return done(new Error('no free packet id'), 0x80);
      const o: Outgoing = { frame: publishFrame(topic, payload, id, retain), done, sent: connected };
      outgoing.set(id, o);
      if (connected) write(o.frame);
    },
    subscribe(topics) {
      subscriptions.push([...topics]);
      if (connected) sendSubscriptions(topics);
    },
    pending: () => outgoing.size,
    async end() {
      ending = true;
      clearInterval(keepalive);
      clearTimeout(reconnectTimer);
      if (socket) {
        if (connected) {
          write(Buffer.from([0xe0, 0]));
          flush();
        }
        socket.end();
        const s = socket;
        const timer = setTimeout(() => s.destroy(), 1000);
        await closed;
        clearTimeout(timer);
      }
      const failed = [...outgoing.values()];
      outgoing.clear();
      for (const o of failed) o.done(new Error('client ended'), 0x80);
    },
  };
}
