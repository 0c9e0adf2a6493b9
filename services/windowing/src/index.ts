export { createWindowing, toFeatureRecord, type Windowing, type WindowingConfig, type WindowingDeps, type FeatureRecord } from './windowing.js';
export { createPartitionState, type PartitionState, type ClosedWindow, type Resume } from './partition-state.js';
export { encodeResume, decodeResume } from './commit-metadata.js';
export { readWindowingConfig } from './config.js';
export { METRICS } from './metrics.js';
export { createWindowSetState, floorKey, splitFloors, type DefinedWindow, type WindowSetState } from './window-set.js';
