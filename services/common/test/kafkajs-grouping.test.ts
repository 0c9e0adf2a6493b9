// First, as in a service: common's kafka.ts before kafkajs.
import { createKafka } from '../src/kafka.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { groupMessagesPerPartition, KAFKAJS_GROUPING_FILE, linearGroupingInstalled } from '../src/kafkajs-grouping.js';
import { kafkajsOwnGrouping } from '../src/testing.js';
import { mulberry32 } from '../src/random.js';

const require = createRequire(import.meta.url);
// kafkajs 2.2.4 has it; another version without it fails here, on purpose.
const FILE = KAFKAJS_GROUPING_FILE!;

test('kafkajs requires the linear grouping once common is loaded first', () => {
  assert.equal(typeof createKafka, 'function');
  assert.equal(linearGroupingInstalled(), true);
  assert.equal(require(FILE), groupMessagesPerPartition, "what kafkajs's producer gets from require");
});

test('the same groups, in the same order, as kafkajs 2.2.4', () => {
  const original = kafkajsOwnGrouping();
  const rng = mulberry32(7);
  for (const [n, partitions] of [
    [0, 3],
    [1, 1],
    [10, 3],
    [500, 7],
    [2000, 3],
  ] as const) {
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId }));
    const messages = Array.from({ length: n }, (_, i) => ({ key: `car-${i}`, value: Buffer.from(String(i)), p: Math.floor(rng() * partitions) }));
    const partitioner = ({ message }: { message: (typeof messages)[number] }) => message.p;
    const args = { topic: 't', partitionMetadata, messages, partitioner };
    const ours = groupMessagesPerPartition(args);
    assert.deepEqual(ours, original(args), `${n} messages over ${partitions} partitions`);
    assert.deepEqual(Object.keys(ours), Object.keys(original(args)));
  }
  const none = { topic: 't', partitionMetadata: [], messages: [{ p: 0 }], partitioner: () => 0 };
  assert.deepEqual(groupMessagesPerPartition(none), {});
  assert.deepEqual(original(none), {});
});

test('a process that loaded kafkajs first keeps the original and says so', () => {
  const grouping = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/kafkajs-grouping.js');
  const script = `await import('kafkajs'); const m = await import(${JSON.stringify(grouping)}); console.log(m.linearGroupingInstalled());`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: path.dirname(FILE), encoding: 'utf8' });
  assert.equal(out.trim(), 'false');
});
