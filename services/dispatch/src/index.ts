export { createDispatch, type Dispatch, type DispatchConfig, type DispatchDeps } from './dispatch.js';
export { alertPayload, alertPublications, type AlertRecord, type Publication } from './handlers/alert.js';
export { readDispatchConfig } from './config.js';
export { createRecentSet } from './recent.js';
export { METRICS } from './metrics.js';
