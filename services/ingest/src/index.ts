export { createIngest, type Ingest, type IngestConfig, type IngestDeps } from './ingest.js';
export { createBatcher, type Batcher } from './batcher.js';
export { handleTelemetry } from './handlers/telemetry.js';
export { parseTelemetry, vehicleIdFromTopic, type ValidationLimits } from './validate.js';
export { readIngestConfig } from './config.js';
export { METRICS } from './metrics.js';
