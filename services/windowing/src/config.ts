import { configReader, readCommonConfig, windowDef, ConfigError, type ConfigReader, type Env } from '@pitwall/common';

export function readWindowingConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'windowing');
  const sizeMs = c.int('WINDOW_SIZE_MS', 10_000, { min: 1 });
  const advanceMs = c.int('WINDOW_ADVANCE_MS', sizeMs, { min: 1 });
  const graceMs = c.int('WINDOW_GRACE_MS', 2_000, { min: 0 });
  const sizes = readWindowSizes(c, sizeMs);
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
  const windows = sizes === undefined ? [windowDef(sizeMs, advanceMs, graceMs)] : sizes.map((size) => windowDef(size, size, graceMs));
  // window: the first definition (the only one by default), named in logs and on the late topic.
  return Object.freeze({ ...cfg, floorsTopic, window: windows[0]!, windows: Object.freeze(windows) });
}

/**
 * WINDOW_SIZES_MS: several tumbling window definitions computed side by side (e.g. 10000,120000),
 * instead of the one of WINDOW_SIZE_MS / WINDOW_ADVANCE_MS. Undefined when unset.
 */
function readWindowSizes(c: ConfigReader, sizeMs: number): number[] | undefined {
  if (c.optional('WINDOW_SIZES_MS') === undefined) return undefined;
  const raw = c.list('WINDOW_SIZES_MS', []);
  const sizes = raw.map(Number);
  const bad = raw.find((x, i) => !Number.isInteger(sizes[i]) || sizes[i]! < 1);
  if (bad !== undefined) return void c.problem('WINDOW_SIZES_MS', `expected a comma-separated list of window sizes in ms (positive integers), got "${bad}"`);
  if (new Set(sizes).size !== sizes.length) return void c.problem('WINDOW_SIZES_MS', `lists a size twice: ${raw.join(',')}`);
  if (c.optional('WINDOW_SIZE_MS') !== undefined) c.problem('WINDOW_SIZES_MS', `set either WINDOW_SIZE_MS (${sizeMs}) or WINDOW_SIZES_MS, not both`);
  if (c.optional('WINDOW_ADVANCE_MS') !== undefined) c.problem('WINDOW_ADVANCE_MS', 'applies to the single window of WINDOW_SIZE_MS; the windows of WINDOW_SIZES_MS are tumbling');
  return sizes;
}
