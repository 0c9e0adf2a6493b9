import { configReader, readCommonConfig, windowDef, ConfigError, type Env } from '@pitwall/common';

export function readWindowingConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'windowing');
  const sizeMs = c.int('WINDOW_SIZE_MS', 10_000, { min: 1 });
  const advanceMs = c.int('WINDOW_ADVANCE_MS', sizeMs, { min: 1 });
  const graceMs = c.int('WINDOW_GRACE_MS', 2_000, { min: 0 });
  const cfg = c.done({
    ...common,
    healthPort: c.int('HEALTH_PORT', 9102, { min: 0, max: 65535 }),
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 10_000 }),
    groupId: c.str('WINDOWING_GROUP_ID', 'pitwall-windowing'),
    idleMs: c.int('WINDOWING_IDLE_MS', 30_000, { min: 0 }),
    // A car silent this long (in arrival time) has its windows closed; covers report intervals and outages up to it.
    vehicleIdleMs: c.int('WINDOWING_VEHICLE_IDLE_MS', 60_000, { min: 0 }),
    floorsTopicName: c.optional('TOPIC_WINDOWING_FLOORS'),
    transactionalIdPrefix: c.str('WINDOWING_TRANSACTIONAL_ID_PREFIX', 'pitwall-windowing'),
    lateTopic: c.str('TOPIC_TELEMETRY_LATE', 'vehicle.telemetry.late'),
    maxBytesPerPartition: c.int('WINDOWING_FETCH_MAX_BYTES', 1_048_576, { min: 1024 }),
    // Each fetched batch is one transaction: a fetch waits (up to the wait) for this many bytes, so
    // that a light load does not commit dozens of tiny transactions per second.
    fetchMinBytes: c.int('WINDOWING_FETCH_MIN_BYTES', 65_536, { min: 1, max: 52_428_800 }),
    fetchMaxWaitMs: c.int('WINDOWING_FETCH_MAX_WAIT_MS', 250, { min: 1, max: 30_000 }),
    sizeMs,
    advanceMs,
    graceMs,
  });
  if (advanceMs > sizeMs) throw new ConfigError('WINDOW_ADVANCE_MS', `must be <= WINDOW_SIZE_MS (${sizeMs}), got ${advanceMs}`);
  // The floors changelog belongs to the group: by default it is named after it.
  const floorsTopic = cfg.floorsTopicName ?? `${cfg.groupId}.floors`;
  return Object.freeze({ ...cfg, floorsTopic, window: windowDef(sizeMs, advanceMs, graceMs) });
}
