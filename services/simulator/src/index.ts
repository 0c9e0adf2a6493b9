export * from './fleet.js';
export * from './csv.js';
export * from './payload.js';
export * from './simulator.js';
export * from './failures.js';
export * from './config.js';
export * from './metrics.js';
export { severityAt } from './faults.js';
export { createRng, mulberry32, hashSeed, type Rng } from './random.js';
