export * from './agreement.js';
export * from './backend.js';
export * from './model-dir.js';
export * from './model-updates.js';
export * from './model-updates-log.js';
export * from './score.js';
export * from './servable.js';
export * from './stuck-sensor.js';
