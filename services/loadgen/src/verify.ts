/**
 * Counts the run's readings in the telemetry topic: reads every partition from where it ended when
 * the run started to where it ends now (a throw-away consumer group, nothing committed, the group
 * deleted afterwards), keeps records whose key (the vehicle id) starts with the run's prefix, and
 * decodes their Avro value with the writer schema from the registry to get the event time. A
 * reading is (vehicle id, ts): a repeat of one (at-least-once redelivery) is counted as a duplicate.
 */
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import type { Kafka } from 'kafkajs';
import { createSchemaStore, deferred, runFromPositions } from '@pitwall/common';

export interface TelemetryCount {
  /** Records of the run's cars. */
  records: number;
  /** Distinct (vehicle, ts) readings. */
  distinct: number;
  duplicates: number;
  /** Distinct readings per car. */
  byCar: Map<string, number>;
}

export async function countRunReadings(
  kafka: Kafka,
  o: { topic: string; registryUrl: string; prefix: string; from: ReadonlyMap<number, bigint>; to: ReadonlyMap<number, bigint>; timeoutMs: number },
): Promise<TelemetryCount> {
  const remaining = new Map([...o.to].filter(([p, end]) => end > (o.from.get(p) ?? 0n)));
  const seen = new Map<string, Set<number>>();
  let records = 0;
  if (remaining.size === 0) return { records, distinct: 0, duplicates: 0, byCar: new Map() };

  const store = createSchemaStore(o.registryUrl);
  const types = new Map<number, Promise<avro.Type>>();
  const typeOf = (id: number): Promise<avro.Type> => {
    let t = types.get(id);
    if (!t) types.set(id, (t = store.getSchema(id).then((s) => avro.Type.forSchema(s))));
    return t;
  };
  const keyPrefix = `${o.prefix}-`;
  const groupId = `loadgen.verify.${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false });
  const { promise: finished, resolve: done } = deferred();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: o.topic });
    const positions = [...remaining.keys()].map((partition) => ({ topic: o.topic, partition, offset: String(o.from.get(partition) ?? 0n) }));
    await runFromPositions(consumer, () => positions, {
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = remaining.get(batch.partition);
        if (end === undefined) return;
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= end) break;
          const key = m.key?.toString('utf8');
          if (!key?.startsWith(keyPrefix) || !m.value || m.value.length < 5) continue;
          records += 1;
          const { ts } = (await typeOf(m.value.readInt32BE(1))).decode(m.value, 5).value as { ts: number };
          let set = seen.get(key);
          if (!set) seen.set(key, (set = new Set()));
          set.add(Number(ts));
        }
        if (BigInt(batch.lastOffset()) + 1n >= end) {
          remaining.delete(batch.partition);
          if (remaining.size === 0) done();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`counting ${o.topic} did not finish within ${o.timeoutMs} ms`)), o.timeoutMs)))]).finally(() =>
      clearTimeout(timer),
    );
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
  const byCar = new Map([...seen].map(([id, s]) => [id, s.size]));
  const distinct = [...byCar.values()].reduce((a, b) => a + b, 0);
  return { records, distinct, duplicates: records - distinct, byCar };
}
