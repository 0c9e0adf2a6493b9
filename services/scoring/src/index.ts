export * from './backend.js';
export * from './config.js';
export * from './metrics.js';
export * from './model-dir.js';
export * from './score.js';
export * from './scoring.js';
export * from './training.js';
