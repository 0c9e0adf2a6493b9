export { createDispatch, type Dispatch, type DispatchConfig, type DispatchDeps } from './dispatch.js';
export {
  alertPayload,
  alertPublication,
  fleetPublication,
  handleIncident,
  handleTombstone,
  maintenancePayload,
  maintenancePublication,
  type AlertDecision,
  type IncidentOutcome,
  type Publication,
} from './handlers/incident.js';
export { createIncidentView, type IncidentView } from './view.js';
export { readDispatchConfig } from './config.js';
export { createRecentSet } from './recent.js';
export { METRICS } from './metrics.js';
