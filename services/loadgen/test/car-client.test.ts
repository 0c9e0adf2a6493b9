import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { createFramer, publishFrame } from '../src/car-client.js';

const parse = (frame: Buffer): Packet[] => {
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const out: Packet[] = [];
  parser.on('packet', (p: Packet) => out.push(p));
  parser.on('error', (err: Error) => assert.fail(err));
  parser.parse(frame);
  return out;
};

test('publishFrame: what mqtt-packet generates, for every length of the remaining-length field', () => {
  const topic = 'vehicles/lt1-00042-0001/telemetry';
  // 1, 2 and 3 bytes of remaining length; multi-byte UTF-8; empty (a retained clear).
  for (const payload of ['{"ts":1}', 'x'.repeat(200), 'é€'.repeat(3000), '']) {
    for (const retain of [false, true]) {
      const frame = publishFrame(Buffer.from(topic), payload, 513, retain);
      const expected = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false, messageId: 513, properties: {} }, { protocolVersion: 5 });
      assert.deepEqual(frame, expected, `payload of ${payload.length} chars, retain ${retain}`);
      const [packet] = parse(frame) as IPublishPacket[];
      assert.equal(packet!.topic, topic);
      assert.equal((packet!.payload as Buffer).toString('utf8'), payload);
      assert.equal(packet!.messageId, 513);
      assert.equal(packet!.retain, retain);
    }
  }
});

test('publishFrame: packet ids at the edges', () => {
  for (const id of [1, 255, 256, 65535]) {
    const [packet] = parse(publishFrame(Buffer.from('a/b'), '{}', id)) as IPublishPacket[];
    assert.equal(packet!.messageId, id);
    assert.equal(packet!.qos, 1);
  }
});

test('createFramer: PUBACKs handled inline, other packets whole, at every split of the stream', () => {
  const gen = (p: Packet): Buffer => mqttPacket.generate(p, { protocolVersion: 5 });
  const stream = Buffer.concat([
    gen({ cmd: 'puback', messageId: 1 }),
    gen({ cmd: 'puback', messageId: 300, reasonCode: 16 }),
    gen({ cmd: 'publish', topic: 'vehicles/c1/alerts', payload: Buffer.from('x'.repeat(300)), qos: 1, messageId: 9, retain: false, dup: false }),
    gen({ cmd: 'puback', messageId: 65535, reasonCode: 135, properties: { reasonString: 'not authorized' } }),
    gen({ cmd: 'suback', messageId: 2, granted: [1, 1] }),
    gen({ cmd: 'pingresp' }),
  ]);
  const expected = ['puback 1 0', 'puback 300 16', 'publish 9', 'puback 65535 135', 'suback 2', 'pingresp'];
  for (let cut = 0; cut <= stream.length; cut++) {
    const seen: string[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p: Packet) => seen.push(`${p.cmd}${p.messageId !== undefined ? ` ${p.messageId}` : ''}`));
    const framer = createFramer(
      (id, reason) => seen.push(`puback ${id} ${reason}`),
      (frame) => parser.parse(frame),
    );
    framer(stream.subarray(0, cut));
    framer(stream.subarray(cut));
    assert.deepEqual(seen, expected, `cut at ${cut}`);
  }
  // Byte by byte.
  const seen: string[] = [];
  const framer = createFramer(
    (id, reason) => seen.push(`${id}/${reason}`),
    () => seen.push('other'),
  );
  for (const b of stream) framer(Buffer.from([b]));
  assert.deepEqual(seen, ['1/0', '300/16', 'other', '65535/135', 'other', 'other']);
});

test('createFramer: a remaining length of more than four bytes is refused', () => {
  const framer = createFramer(
    () => assert.fail('no puback'),
    () => assert.fail('no packet'),
  );
  assert.throws(() => framer(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), /malformed remaining length/);
});
