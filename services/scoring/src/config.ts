/**
 * Scoring configuration from an explicit environment (main.ts passes process.env). Every problem is
 * reported at once, naming its variable; the result is frozen.
 */
import os from 'node:os';
import { configReader, readCommonConfig, type CommonConfig, type Env } from '@pitwall/common';
import { BACKENDS, defaultModelsDir, type BackendName } from '@pitwall/model';
import { SERVICE } from './scoring.js';
import type { ScoringInput } from './chunk.js';

export interface ScoringServiceConfig extends CommonConfig {
  /**
   * name: the first of MODEL_NAME (MODEL_VERSION, MODEL_SHADOW_VERSION and the shadow apply to it);
   * names: every one, each serving its own version for the windows of the size it declares.
   */
  model: { dir: string; name: string; names: string[]; version: string };
  /** undefined: pick automatically (tensorflow, wasm, cpu). */
  tfjsBackend: BackendName | undefined;
  /**
   * SCORING_INPUT: windows (vehicle.features, models of window features) or readings
   * (vehicle.telemetry, each reading scored by the one model of MODEL_NAME, which declares a
   * reading input).
   */
  input: ScoringInput;
  /** The topic consumed: TOPIC_FEATURES, or TOPIC_TELEMETRY for readings. */
  sourceTopic: string;
  groupId: string;
  featuresDlqTopic: string;
  batchSize: number;
  /** How often the models folder is checked for a new version when MODEL_VERSION is latest. */
  modelPollMs: number;
  minCoverage: number;
  fromBeginning: boolean;
  partitions: number;
  healthPort: number;
  /** MODEL_SHADOW_VERSION: a version scored alongside the active one, for comparison; a model.updates shadow/unshadow event beats it. */
  shadowVersion: string | undefined;
  /** How often shadow agreement reports go to TOPIC_SHADOW_REPORTS. */
  shadowReportMs: number;
  /** Names this replica in shadow reports and in its private model.updates consumer group. */
  instanceId: string;
  /**
   * Drift (drift.ts): the fleet's period (SCORING_DRIFT_PERIOD_S), each vehicle's last windows
   * (SCORING_DRIFT_VEHICLE_WINDOWS), the vehicles tracked at most (SCORING_DRIFT_MAX_VEHICLES) and
   * how often model.drift records are published (SCORING_DRIFT_REPORT_MS); SCORING_DRIFT=false
   * turns it off (about 10-15 % of the service path's speed, docs/models.md).
   */
  drift: { enabled: boolean; periodMs: number; vehicleWindows: number; maxVehicles: number; reportMs: number };
}

export function readScoringConfig(env: Env): Readonly<ScoringServiceConfig> {
  const c = configReader(env);
  const common = readCommonConfig(c, SERVICE);
  const backend = c.oneOf('TFJS_BACKEND', ['auto', ...BACKENDS], 'auto');
  const version = c.str('MODEL_VERSION', 'latest');
  // 'latest' or a version number; anything else is reported as a bad integer, naming the variable.
  const versionOk = version === 'latest' || /^[0-9]+$/.test(version);
  if (!versionOk) c.int('MODEL_VERSION', 0, { min: 1 });
  const shadowVersion = c.optional('MODEL_SHADOW_VERSION');
  if (shadowVersion !== undefined && !/^[0-9]+$/.test(shadowVersion)) c.int('MODEL_SHADOW_VERSION', 0, { min: 1 });
  const names = c.list('MODEL_NAME', ['pitwall-ae']);
  const badName = names.find((n) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n));
  if (badName !== undefined) c.problem('MODEL_NAME', `expected model names (a directory under MODEL_DIR each), comma-separated, got "${badName}"`);
  if (new Set(names).size !== names.length) c.problem('MODEL_NAME', `names a model twice: ${names.join(',')}`);
  const input = c.oneOf('SCORING_INPUT', ['windows', 'readings'] as const, 'windows');
  if (input === 'readings' && names.length > 1) c.problem('MODEL_NAME', `SCORING_INPUT=readings serves one model (each reading goes to it), got ${names.join(',')}`);
  const config = {
    ...common,
    input,
    sourceTopic: input === 'readings' ? common.topics.telemetry : common.topics.features,
    model: {
      dir: c.str('MODEL_DIR', defaultModelsDir()),
      name: names[0]!,
      names,
      version,
    },
    tfjsBackend: backend === 'auto' ? undefined : backend,
    // A readings deployment is a group of its own: it consumes another topic than the windows one.
    groupId: c.str('SCORING_GROUP_ID', input === 'readings' ? 'pitwall-scoring-readings' : 'pitwall-scoring'),
    featuresDlqTopic: c.str('TOPIC_FEATURES_DLQ', 'vehicle.features.dlq'),
    batchSize: c.int('SCORING_BATCH_SIZE', 500, { min: 1, max: 10_000 }),
    modelPollMs: c.int('MODEL_POLL_MS', 5_000, { min: 100 }),
    minCoverage: c.num('SCORING_MIN_COVERAGE', 0.8, { min: 0, max: 1 }),
    // A new group starts at the oldest retained window so nothing produced before its first start is lost.
    fromBeginning: c.bool('SCORING_FROM_BEGINNING', true),
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 1000 }),
    healthPort: c.int('HEALTH_PORT', 9103, { min: 0, max: 65_535 }),
    shadowVersion,
    shadowReportMs: c.int('SCORING_SHADOW_REPORT_MS', 30_000, { min: 100 }),
    instanceId: c.str('SCORING_INSTANCE_ID', `${os.hostname()}-${process.pid}`),
    drift: {
      enabled: c.bool('SCORING_DRIFT', true),
      periodMs: c.int('SCORING_DRIFT_PERIOD_S', 900, { min: 10, max: 86_400 }) * 1000,
      vehicleWindows: c.int('SCORING_DRIFT_VEHICLE_WINDOWS', 120, { min: 2, max: 10_000 }),
      maxVehicles: c.int('SCORING_DRIFT_MAX_VEHICLES', 2_000, { min: 0, max: 1_000_000 }),
      reportMs: c.int('SCORING_DRIFT_REPORT_MS', 60_000, { min: 100 }),
    },
  };
  return c.done(config);
}
