export { createIncidents, vehiclePartition, type Incidents, type IncidentsConfig, type IncidentsCodecs, type IncidentsDeps } from './incidents.js';
export {
  apply,
  areaOf,
  counts,
  createIncidentState,
  incidentId,
  load,
  maxSeverity,
  ratioOf,
  severityFor,
  HISTORY_LIMIT,
  type ApplyResult,
  type IgnoredReason,
  type IncidentState,
  type Input,
} from './incident-state.js';
export { coPartitionedAssigner, coPartitionedAssignment, CO_PARTITIONED_ASSIGNER_NAME } from './assigner.js';
export { readIncidentsConfig, type IncidentsServiceConfig } from './config.js';
export { METRICS } from './metrics.js';
