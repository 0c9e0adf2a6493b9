/**
 * kafkajs 2.2.4 groups a send's messages by partition with `[...current, message]` per message
 * (src/producer/groupMessagesPerPartition.js): quadratic in the messages per partition. A send of
 * 2,000 records over 3 partitions cost 7.9 µs per record there, 0.23 µs grouped in one pass (more
 * than validating and encoding a reading; ingest, windowing and incidents send thousands at once).
 *
 * kafkajs takes the function with `require` when its producer module loads, so this module puts a
 * linear one with the same contract (partition -> messages in send order, {} without partition
 * metadata) into the CommonJS module cache first. It must be evaluated before anything loads
 * kafkajs: kafka.ts imports it ahead of kafkajs, and nothing else in common loads kafkajs at run
 * time. `linearGroupingInstalled()` says whether kafkajs took it (a process that loaded kafkajs
 * before @pitwall/common keeps the original, slower but correct).
 */
import { createRequire, Module } from 'node:module';
import path from 'node:path';

interface GroupArgs<M> {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly M[];
  partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: M }) => number;
}

/** Messages by partition, each list in send order: what kafkajs's groupMessagesPerPartition returns, in one pass. */
export function groupMessagesPerPartition<M>({ topic, partitionMetadata, messages, partitioner }: GroupArgs<M>): Record<number, M[]> {
  const result: Record<number, M[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
}

const require = createRequire(import.meta.url);

/** The file kafkajs requires, or undefined when this kafkajs has no such file (another version). */
function groupingFile(): string | undefined {
  try {
    const file = path.join(path.dirname(require.resolve('kafkajs/package.json')), 'src/producer/groupMessagesPerPartition.js');
    return require.resolve(file);
  } catch {
    return undefined;
  }
}

/** kafkajs's file of the function (undefined for a kafkajs without it). */
export const KAFKAJS_GROUPING_FILE = groupingFile();
const FILE = KAFKAJS_GROUPING_FILE;
if (FILE !== undefined && require.cache[FILE] === undefined) {
  // A loaded module record as Node's CommonJS loader keeps it; kafkajs's `require` returns `exports`.
  const mod = new Module(FILE);
  mod.filename = FILE;
  mod.loaded = true;
  mod.exports = groupMessagesPerPartition;
  require.cache[FILE] = mod;
}

/** True when kafkajs's producer groups with `groupMessagesPerPartition` above. */
export function linearGroupingInstalled(): boolean {
  return FILE !== undefined && require.cache[FILE]?.exports === groupMessagesPerPartition;
}
