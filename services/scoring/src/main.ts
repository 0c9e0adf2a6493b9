/** Scoring service entry point: config, backend, model, clients, health, graceful shutdown. */
import * as tf from '@tensorflow/tfjs';
import {
  createAvroCodec,
  createCounters,
  createKafka,
  createLogger,
  createSchemaStore,
  defaultSchemasDir,
  loadSchemaFile,
  onShutdown,
  runMain,
  startHealthServer,
} from '@pitwall/common';
import { selectBackend } from './backend.js';
import { readScoringConfig } from './config.js';
import { loadModelDir, resolveVersion } from './model-dir.js';
import { createScoring, SERVICE, type FeatureRecord } from './scoring.js';
import type { AlertRecord } from './score.js';

import { createModelHolder } from './model-holder.js';
import { createModelWatcher } from './model-watcher.js';
import { METRICS } from './metrics.js';
runMain(SERVICE, async () => {
  const config = readScoringConfig(process.env);
  const log = createLogger({ service: SERVICE, level: config.logLevel });
  // Production mode: no debug checks, and no console hint to install tfjs-node.
  tf.enableProdMode();
  let modelLoaded = false;
  let scoringReady = (): boolean => false;
  const health = await startHealthServer(config.healthPort, { model: () => modelLoaded, kafka: () => scoringReady() });

  await selectBackend({ override: config.tfjsBackend, log });
  const { dir } = await resolveVersion(config.model.dir, config.model.name, config.model.version);
  const model = await loadModelDir(dir);
  modelLoaded = true;
  log.info('model loaded', {
    dir,
    name: model.metadata.name,
    version: model.metadata.version,
    threshold: model.metadata.threshold,
    features: model.metadata.features.length,
  });

  const kafka = createKafka(config, log);
  const store = createSchemaStore(config.registryUrl);
  const schemas = defaultSchemasDir();
  const featuresCodec = await createAvroCodec<FeatureRecord>(store, `${config.topics.features}-value`, await loadSchemaFile(schemas, 'features', 1));
  const alertsCodec = await createAvroCodec<AlertRecord>(store, `${config.topics.alerts}-value`, await loadSchemaFile(schemas, 'alert', 1));

  const holder = createModelHolder(model, { log });
  const watcher =
    config.model.version === 'latest'
      ? createModelWatcher({ modelsDir: config.model.dir, name: config.model.name, holder, pollMs: config.modelPollMs, log, counters: createCounters(Object.values(METRICS)) })
      : undefined;
  watcher?.start();
  const scoring = createScoring({
    kafka,
    featuresCodec,
    alertsCodec,
    model: holder,
    log,
    config: {
      topics: { features: config.topics.features, alerts: config.topics.alerts, featuresDlq: config.featuresDlqTopic },
      groupId: config.groupId,
      batchSize: config.batchSize,
      minCoverage: config.minCoverage,
      partitions: config.partitions,
      fromBeginning: config.fromBeginning,
    },
  });
  scoringReady = scoring.ready;
  onShutdown(log, async () => {
    watcher?.stop();
    await scoring.close();
    await health.close();
    holder.dispose();
    log.info('final stats', { ...scoring.stats() });
  });
  await scoring.start();
});
