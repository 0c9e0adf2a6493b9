import { configReader, readCommonConfig, type Env } from '@pitwall/common';

export function readIncidentsConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'incidents');
  return c.done({
    ...common,
    healthPort: c.int('HEALTH_PORT', 9106, { min: 0, max: 65535 }),
    /** Partitions of topics this service creates when missing (inputs must all have the same count). */
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 10_000 }),
    groupId: c.str('INCIDENTS_GROUP_ID', 'pitwall-incidents'),
    transactionalIdPrefix: c.str('INCIDENTS_TRANSACTIONAL_ID_PREFIX', 'pitwall-incidents'),
    clearAfterWindows: c.int('INCIDENTS_CLEAR_AFTER_WINDOWS', 6, { min: 1, max: 10_000 }),
    /** Consumer group session timeout: how long a crashed instance holds its partitions. */
    sessionTimeoutMs: c.int('INCIDENTS_SESSION_TIMEOUT_MS', 30_000, { min: 6_000, max: 300_000 }),
    /** Fetch size per partition; small values make batches (= transactions) small, tests use it. */
    maxBytesPerPartition: c.int('INCIDENTS_FETCH_MAX_BYTES', 1_048_576, { min: 1024 }),
    /** Undecodable inputs; defaults next to the incidents topic so isolated runs stay isolated. */
    dlqTopic: c.str('TOPIC_INCIDENTS_DLQ', `${common.topics.incidents}.dlq`),
  });
}

export type IncidentsServiceConfig = ReturnType<typeof readIncidentsConfig>;
