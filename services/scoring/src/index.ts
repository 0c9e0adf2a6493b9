export * from './chunk.js';
export * from './config.js';
export * from './metrics.js';
export * from './scoring.js';
export * from './model-holder.js';
export * from './model-watcher.js';
export * from './model-control.js';
export * from './shadow.js';
