/**
 * What the pipeline did, read with a kafkajs admin client once a second: the summed end offsets
 * of each stage's topic (the difference between two samples is the stage's records per second;
 * transactional topics also count their commit markers), and each consumer group's lag: end offset
 * minus committed offset over every partition the group has committed (a partition with no commit
 * counts from its start). A topic or group that does not exist yet reads as null: topics are
 * looked up in the topic list first and only existing ones are asked for offsets (kafkajs keeps a
 * missing topic it was asked about in every later metadata request, which then all fail with
 * "This server does not host this topic-partition": one stage not running blinded the whole probe).
 * The sampler repeats this once a second in a loop of its own, so a slow answer never delays
 * anything else.
 */
import type { Admin, Kafka } from 'kafkajs';
import type { Topics } from './args.js';
import { partitionLag } from '@pitwall/common';

export type Stage = keyof Topics;
export const STAGES: readonly Stage[] = ['telemetry', 'features', 'scores', 'alerts', 'incidents'];

export interface ProbeSample {
  /** Sum of end offsets per stage topic. */
  offsets: Record<Stage, number | null>;
  lag: Record<string, number | null>;
}

export interface Probe {
  sample(): Promise<ProbeSample>;
  /** End (and start) offset per partition of a topic. */
  partitions(topic: string): Promise<{ partition: number; high: bigint; low: bigint }[]>;
  close(): Promise<void>;
}

export async function createProbe(kafka: Kafka, topics: Topics, groups: readonly string[]): Promise<Probe> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  // Topics seen in the topic list; a topic, once there, stays (this probe never deletes any).
  const known = new Set<string>();
  const exist = async (wanted: readonly string[]): Promise<void> => {
    if (wanted.every((t) => known.has(t))) return;
    const all = new Set(await admin.listTopics());
    for (const t of wanted) if (all.has(t)) known.add(t);
  };
  const partitions = async (topic: string) => {
    await exist([topic]);
    if (!known.has(topic)) throw new Error(`topic ${topic} does not exist`);
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, high: BigInt(p.high), low: BigInt(p.low) }));
  };
  const orNull = async <T>(f: () => Promise<T>): Promise<T | null> => {
    try {
      return await f();
    } catch {
      return null;
    }
  };

  const groupLag = async (groupId: string, ends: Map<string, Map<number, { high: bigint; low: bigint }>>): Promise<number | null> => {
    const committed = await admin.fetchOffsets({ groupId });
    if (committed.length === 0) return null;
    let lag = 0n;
    for (const t of committed) {
      let end = ends.get(t.topic);
      if (!end) {
        end = new Map((await partitions(t.topic)).map((p) => [p.partition, p]));
        ends.set(t.topic, end);
      }
      for (const p of t.partitions) {
        const e = end.get(p.partition);
        if (!e) continue;
        lag += partitionLag(p.offset, e);
      }
    }
    return Number(lag);
  };

  return {
    async sample() {
      const ends = new Map<string, Map<number, { high: bigint; low: bigint }>>();
      const offsets = {} as Record<Stage, number | null>;
      await orNull(() => exist(STAGES.map((stage) => topics[stage])));
      await Promise.all(
        STAGES.map(async (stage) => {
          const ps = await orNull(() => partitions(topics[stage]));
          if (ps) ends.set(topics[stage], new Map(ps.map((p) => [p.partition, p])));
          offsets[stage] = ps ? Number(ps.reduce((n, p) => n + p.high, 0n)) : null;
        }),
      );
      const lag: Record<string, number | null> = {};
      for (const g of groups) lag[g] = await orNull(() => groupLag(g, ends));
      return { offsets, lag };
    },
    partitions,
    close: () => admin.disconnect(),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Samples once a second; `latest()` is the newest sample with the time it was taken. */
export async function startSampler(probe: Probe): Promise<{ latest(): ProbeSample & { at: number }; stop(): Promise<void> }> {
  let sample = { ...(await probe.sample()), at: Date.now() };
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        sample = { ...(await probe.sample()), at: Date.now() };
      } catch {
        // keep the last sample
      }
      await sleep(started + 1000 - Date.now());
    }
  })();
  return {
    latest: () => sample,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
