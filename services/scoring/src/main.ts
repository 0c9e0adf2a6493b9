/** Scoring service entry point: config, backend, model.updates, model, clients, health, graceful shutdown. */
import * as tf from '@tensorflow/tfjs';
import {
  createCounters,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaStore,
  deferred,
  createTopicCodec,
  exportReadiness,
  onShutdown,
  probeKafka,
  READINESS_COUNTERS,
  runMain,
  serviceReadiness,
  startConsumerLagPoller,
  startHealthServer,
  type ConsumerLagPoller,
} from '@pitwall/common';
import {
  type AlertRecord,
  createModelUpdatesFollower,
  formatOf,
  type LoadedModel,
  loadModelDir,
  resolveModelUpdates,
  resolveVersion,
  type ScoreRecord,
  selectBackend,
  uniqueGroupId,
} from '@pitwall/model';
import { readScoringConfig } from './config.js';
import { createModelControl, startupShadow, startupVersion, type ModelControl } from './model-control.js';
import { createModelHolder } from './model-holder.js';
import { createModelWatcher } from './model-watcher.js';
import { COUNTERS, METRICS } from './metrics.js';
import { createScoring, SERVICE, type FeatureRecord } from './scoring.js';
import { createShadowReporter, createShadowScorer } from './shadow.js';

runMain(SERVICE, async () => {
  const config = readScoringConfig(process.env);
  const log = createLogger({ service: SERVICE, level: config.logLevel });
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const counters = createCounters({ ...COUNTERS, ...READINESS_COUNTERS }, metrics);
  // Production mode: no debug checks, and no console hint to install tfjs-node.
  tf.enableProdMode();
  const readiness = serviceReadiness(config, log, counters);
  exportReadiness(metrics, readiness.checks);
  readiness.set('model', false, 'loading');
  readiness.set('scoring', false, 'starting');
  const health = await startHealthServer(config.healthPort, readiness.failing, { metrics });

  await selectBackend({ override: config.tfjsBackend, log });
  const kafka = createKafka(config, log);
  const probe = probeKafka(kafka, readiness);

  // model.updates first: the version the fleet was told to serve beats MODEL_VERSION. Live events
  // wait until the model control exists.
  const { promise: control, resolve: controlReady } = deferred<ModelControl>();
  const updates = createModelUpdatesFollower({
    kafka,
    topic: config.topics.modelUpdates,
    groupId: uniqueGroupId(`${config.groupId}.model-updates`),
    log,
    onEvent: async (event) => void (await (await control).apply(event)),
    onInvalid: () => counters.inc(METRICS.modelUpdatesInvalid),
  });
  const history = await updates.start();
  const state = resolveModelUpdates(history, config.model.name);
  const start = startupVersion(state, config.model.version);

  let model: LoadedModel;
  let pinned = start.pinnedByEvent;
  let source = state.active === undefined ? 'MODEL_VERSION' : 'model.updates';
  try {
    model = await loadModelDir((await resolveVersion(config.model.dir, config.model.name, start.version)).dir);
  } catch (err) {
    if (state.active === undefined) throw err;
    // The activated version is missing or broken here: refuse it like a live event, serve MODEL_VERSION.
    counters.inc(METRICS.modelsRefused);
    log.warn('model version from model.updates refused; serving MODEL_VERSION instead', { version: start.version, reason: (err as Error).message });
    model = await loadModelDir((await resolveVersion(config.model.dir, config.model.name, config.model.version)).dir);
    pinned = false;
    source = 'MODEL_VERSION';
  }
  readiness.set('model', true);
  log.info('model loaded', {
    dir: model.dir,
    name: model.metadata.name,
    version: model.metadata.version,
    format: formatOf(model.model),
    threshold: model.metadata.threshold,
    features: model.metadata.features.length,
    source,
    lastUpdate: state.last ?? null,
  });

  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  const featuresCodec = await createTopicCodec<FeatureRecord>(store, config.topics.features, 'features', 1);
  const alertsCodec = await createTopicCodec<AlertRecord>(store, config.topics.alerts, 'alert', 1);
  const scoresCodec = await createTopicCodec<ScoreRecord>(store, config.topics.scores, 'score', 1);

  const holder = createModelHolder(model, { log });
  const shadow = createShadowScorer({ model: config.model.name, instance: config.instanceId, log, counters });
  let modelControl: ModelControl | undefined;
  const watcher = createModelWatcher({
    modelsDir: config.model.dir,
    name: config.model.name,
    holder,
    pollMs: config.modelPollMs,
    log,
    counters,
    enabled: () => modelControl?.watchEnabled() ?? false,
  });
  modelControl = createModelControl({
    modelsDir: config.model.dir,
    name: config.model.name,
    holder,
    shadow,
    log,
    counters,
    pinned,
    envVersion: config.model.version,
    checkDirectory: () => watcher.check(),
  });
  await modelControl.setShadow(startupShadow(state, config.shadowVersion));
  controlReady(modelControl);
  watcher.start();

  const reporter = createShadowReporter({ kafka, topic: config.topics.shadowReports, scorer: shadow, intervalMs: config.shadowReportMs, log, counters });
  const scoring = createScoring({
    kafka,
    featuresCodec,
    alertsCodec,
    scoresCodec,
    model: holder,
    shadow,
    counters,
    metrics,
    log,
    readiness,
    config: {
      topics: { features: config.topics.features, alerts: config.topics.alerts, scores: config.topics.scores, featuresDlq: config.featuresDlqTopic },
      groupId: config.groupId,
      batchSize: config.batchSize,
      minCoverage: config.minCoverage,
      partitions: config.partitions,
      fromBeginning: config.fromBeginning,
      maxBatchBytes: config.kafka.maxBatchBytes,
    },
  });
  let lag: ConsumerLagPoller | undefined;
  onShutdown(log, async () => {
    readiness.stop();
    watcher.stop();
    await updates.close();
    await scoring.close();
    await lag?.stop();
    await reporter.close();
    await probe.stop();
    await health.close();
    holder.dispose();
    shadow.dispose();
    log.info('final stats', { ...scoring.stats() });
  });
  await reporter.start();
  await scoring.start();
  // After start: the topics exist.
  lag = startConsumerLagPoller({ kafka, registry: metrics, groups: [{ groupId: config.groupId, topics: [config.topics.features] }], log });
});
