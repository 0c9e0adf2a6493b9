export { createConsole, defaultPublicDir, HttpError, type Console, type ConsoleDeps, type ConsoleSettings } from './console.js';
export { readConsoleConfig, parseUsers, type ConsoleConfig } from './config.js';
export { checkPassword, createRevocations, newSession, originAllowed, parseCookies, signSession, verifySession, SESSION_COOKIE, type Session } from './session.js';
export { createEventLog, formatSse, sseComment, type SseEvent } from './sse.js';
export { murmur2, partitionForKey } from './partition.js';
export { createFleetView, createIncidentStore, vehicleHealth, isOpen, type Health, type VehicleSummary } from './state.js';
export { createTelemetryReader, offsetRange, toSeries, type TelemetrySeries } from './telemetry.js';
export { METRICS } from './metrics.js';
