/** Scoring service entry point: config, backend, model.updates, model, clients, health, graceful shutdown. */
import * as tf from '@tensorflow/tfjs';
import {
  ConfigError,
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
  inputKindOf,
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
import { createDriftMonitor, createDriftReporter, type DriftMonitor } from './drift.js';
import { clashingWindows } from './routes.js';

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
  const { promise: controls, resolve: controlsReady } = deferred<ModelControl[]>();
  const updates = createModelUpdatesFollower({
    kafka,
    topic: config.topics.modelUpdates,
    groupId: uniqueGroupId(`${config.groupId}.model-updates`),
    log,
    onEvent: async (event) => {
      // Each control applies the events of its own model name and ignores the others.
      for (const c of await controls) await c.apply(event);
    },
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
  // MODEL_NAME's other names: each serves its active version (model.updates, else the latest
  // directory) for the windows of the size it declares (routes.ts).
  const routed: { name: string; model: LoadedModel; pinned: boolean }[] = [];
  for (const name of config.model.names.slice(1)) {
    const st = resolveModelUpdates(history, name);
    const begin = startupVersion(st, 'latest');
    let m: LoadedModel;
    let routedPinned = begin.pinnedByEvent;
    try {
      m = await loadModelDir((await resolveVersion(config.model.dir, name, begin.version)).dir);
    } catch (err) {
      if (st.active === undefined) throw err;
      counters.inc(METRICS.modelsRefused);
      log.warn('model version from model.updates refused; serving the latest directory instead', { name, version: begin.version, reason: (err as Error).message });
      m = await loadModelDir((await resolveVersion(config.model.dir, name, 'latest')).dir);
      routedPinned = false;
    }
    routed.push({ name, model: m, pinned: routedPinned });
  }
  // One deployment, one input kind: window models for SCORING_INPUT=windows, a reading model for readings.
  const wantKind = config.input === 'readings' ? 'reading' : 'window';
  const misfit = [model, ...routed.map((r) => r.model)].find((m) => inputKindOf(m.metadata) !== wantKind);
  if (misfit) {
    throw new ConfigError(
      'SCORING_INPUT',
      `is ${config.input}, but model ${misfit.metadata.name}@${misfit.metadata.version} declares a ${inputKindOf(misfit.metadata)} input (${misfit.dir}); ` +
        (wantKind === 'window' ? 'serve it with SCORING_INPUT=readings' : 'SCORING_INPUT=readings serves a model whose metadata declares input.kind "reading"'),
    );
  }
  const clashes = clashingWindows([model, ...routed.map((r) => r.model)].map((m) => m.metadata));
  if (clashes.length > 0) throw new ConfigError('MODEL_NAME', `each served model must declare its own window size: ${clashes.join('; ')}`);
  readiness.set('model', true);
  for (const r of routed) {
    log.info('model loaded', {
      dir: r.model.dir,
      name: r.model.metadata.name,
      version: r.model.metadata.version,
      format: formatOf(r.model.model),
      threshold: r.model.metadata.threshold,
      windowMs: r.model.metadata.window.sizeMs,
    });
  }
  log.info('model loaded', {
    windowMs: model.metadata.window.sizeMs,
    dir: model.dir,
    name: model.metadata.name,
    version: model.metadata.version,
    format: formatOf(model.model),
    threshold: model.metadata.threshold,
    features: model.metadata.features.length,
    input: config.input,
    source,
    lastUpdate: state.last ?? null,
  });

  const store = createSchemaStore(config.registryUrl, config.registryCredentials);
  // Readings: telemetry v2 (reads v1 too), as windowing decodes it; feature v2 reads v1 (no window definition named: their size is end - start).
  const featuresCodec = await createTopicCodec<FeatureRecord>(store, config.sourceTopic, config.input === 'readings' ? 'telemetry' : 'features', 2);
  const alertsCodec = await createTopicCodec<AlertRecord>(store, config.topics.alerts, 'alert', 1);
  const scoresCodec = await createTopicCodec<ScoreRecord>(store, config.topics.scores, 'score', 1);

  const holder = createModelHolder(model, { log });
  let drift: DriftMonitor | undefined;
  const shadow = createShadowScorer({ model: config.model.name, instance: config.instanceId, log, counters, drift: (at) => drift?.shadowDrift(at) });
  // SCORING_DRIFT=false: no monitor, no gauges, no model.drift records.
  drift = config.drift.enabled
    ? createDriftMonitor({
        ...config.drift,
        shadowed: { name: config.model.name, current: () => shadow.current() },
        instance: config.instanceId,
        log,
        metrics,
      })
    : undefined;
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
  const routes = routed.map((r) => {
    const routeHolder = createModelHolder(r.model, { log });
    let routeControl: ModelControl | undefined;
    const routeWatcher = createModelWatcher({
      modelsDir: config.model.dir,
      name: r.name,
      holder: routeHolder,
      pollMs: config.modelPollMs,
      log,
      counters,
      enabled: () => routeControl?.watchEnabled() ?? false,
    });
    const control = createModelControl({
      modelsDir: config.model.dir,
      name: r.name,
      holder: routeHolder,
      // Never scored with: a shadow serves the first MODEL_NAME only, and such events are ignored below.
      shadow: createShadowScorer({ model: r.name, instance: config.instanceId, log, counters }),
      log,
      counters,
      pinned: r.pinned,
      envVersion: 'latest',
      checkDirectory: () => routeWatcher.check(),
    });
    routeControl = {
      ...control,
      async apply(event) {
        if (event.model === r.name && (event.action === 'shadow' || event.action === 'unshadow')) {
          log.warn('model.updates shadow event ignored: a shadow version serves the first MODEL_NAME only', { name: r.name, action: event.action, version: event.version });
          return 'ignored';
        }
        return control.apply(event);
      },
    };
    return { holder: routeHolder, watcher: routeWatcher, control: routeControl };
  });
  controlsReady([modelControl, ...routes.map((r) => r.control)]);
  watcher.start();
  for (const r of routes) r.watcher.start();

  const reporter = createShadowReporter({ kafka, topic: config.topics.shadowReports, scorer: shadow, intervalMs: config.shadowReportMs, log, counters });
  const driftReporter = drift && createDriftReporter({ kafka, topic: config.topics.driftReports, partitions: config.partitions, monitor: drift, intervalMs: config.drift.reportMs, log });
  const scoring = createScoring({
    kafka,
    featuresCodec,
    alertsCodec,
    scoresCodec,
    model: holder,
    routes: routes.map((r) => r.holder),
    shadow,
    drift,
    counters,
    metrics,
    log,
    readiness,
    config: {
      input: config.input,
      topics: { features: config.sourceTopic, alerts: config.topics.alerts, scores: config.topics.scores, featuresDlq: config.featuresDlqTopic },
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
    for (const r of routes) r.watcher.stop();
    await updates.close();
    await scoring.close();
    await lag?.stop();
    await reporter.close();
    await driftReporter?.close();
    await probe.stop();
    await health.close();
    holder.dispose();
    for (const r of routes) r.holder.dispose();
    shadow.dispose();
    log.info('final stats', { ...scoring.stats() });
  });
  await reporter.start();
  await driftReporter?.start();
  await scoring.start();
  // After start: the topics exist.
  lag = startConsumerLagPoller({ kafka, registry: metrics, groups: [{ groupId: config.groupId, topics: [config.sourceTopic] }], log });
});
