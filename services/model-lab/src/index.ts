export * from './evaluation.js';
export * from './kafka-history.js';
export * from './kafka-training.js';
export * from './keras-h5.js';
export * from './model-commands.js';
export * from './model-import.js';
export * from './replay.js';
export * from './training.js';
