/**
 * Console configuration, read once in main.ts from an explicit environment.
 *
 *   CONSOLE_PORT                 HTTP port of the UI, the API and /healthz /readyz (default 8080)
 *   CONSOLE_USERS                required: "name:role:scrypt$N$r$p$salt$hash,..." (roles viewer, operator,
 *                                admin); never passwords: `npm run console-user -- <name> <role>` makes an entry
 *   CONSOLE_SESSION_SECRET       HMAC key of the session cookie (>= 16 chars); random per start if unset,
 *                                which signs everyone out on restart and does not work across replicas
 *   CONSOLE_SESSION_TTL_S        session lifetime (default 12 h)
 *   CONSOLE_COOKIE_SECURE        always add `Secure` to the cookie (default false: added when the request
 *                                came over TLS, or with X-Forwarded-Proto: https from a trusted proxy)
 *   CONSOLE_TRUSTED_PROXIES      IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed
 *                                (default none)
 *   CONSOLE_ALLOWED_ORIGINS      origins allowed to POST (default http://127.0.0.1:<port>,
 *                                http://localhost:<port>, http://[::1]:<port>)
 *   TOPIC_CONSOLE_SESSIONS       compacted topic of session revocations (default console.sessions)
 *   TOPIC_CONSOLE_AUDIT          audit trail of operator actions (default console.audit)
 *   CONSOLE_GROUP_ID_PREFIX      prefix of the throw-away consumer groups (default pitwall-console)
 *   CONSOLE_SCORES_LOOKBACK_S    how far back vehicle.scores is read at start (default 900)
 *   CONSOLE_DRIFT_LOOKBACK_S     how far back model.drift (TOPIC_DRIFT_REPORTS) is read at start (default 3600)
 *   CONSOLE_DRIFT_STALE_S        a scoring replica's fleet drift older than this is left out (default 300)
 *   CONSOLE_TELEMETRY_BEFORE_S   chart range before an incident's first window (default 300)
 *   CONSOLE_TELEMETRY_AFTER_S    chart range after an incident's first window (default 120)
 *   CONSOLE_TELEMETRY_MAX_SCAN   records of the vehicle's partition read at most per chart (default 50000)
 *   CONSOLE_TELEMETRY_MAX_POINTS readings of the vehicle kept at most per chart (default 3000)
 *   TOPIC_PARTITIONS             partitions of topics the console creates when missing (default 3)
 */
import { ConfigError, configReader, readCommonConfig, type Env } from '@pitwall/common';
import { defaultAllowedOrigins, parseAllowedOrigins } from './origins.js';
import { parseUsers } from './passwords.js';
import { NO_TRUSTED_PROXIES, parseTrustedProxies } from './proxy.js';

export { parseUsers } from './passwords.js';

export function readConsoleConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'console');
  const usersText = c.str('CONSOLE_USERS');
  const secret = c.optional('CONSOLE_SESSION_SECRET');
  const port = c.int('CONSOLE_PORT', 8080, { min: 0, max: 65535 });
  const proxiesList = c.list('CONSOLE_TRUSTED_PROXIES', []);
  const originsList = c.list('CONSOLE_ALLOWED_ORIGINS', defaultAllowedOrigins(port));
  const config = c.done({
    ...common,
    port,
    /** Health endpoints share the UI port. */
    healthPort: port,
    sessionTtlMs: c.int('CONSOLE_SESSION_TTL_S', 43_200, { min: 60, max: 2_592_000 }) * 1000,
    cookieSecure: c.bool('CONSOLE_COOKIE_SECURE', false),
    groupIdPrefix: c.str('CONSOLE_GROUP_ID_PREFIX', 'pitwall-console'),
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 10_000 }),
    scoresLookbackMs: c.int('CONSOLE_SCORES_LOOKBACK_S', 900, { min: 0 }) * 1000,
    driftLookbackMs: c.int('CONSOLE_DRIFT_LOOKBACK_S', 3_600, { min: 0, max: 86_400 }) * 1000,
    driftStaleMs: c.int('CONSOLE_DRIFT_STALE_S', 300, { min: 1, max: 86_400 }) * 1000,
    consoleTopics: {
      sessions: c.str('TOPIC_CONSOLE_SESSIONS', 'console.sessions'),
      audit: c.str('TOPIC_CONSOLE_AUDIT', 'console.audit'),
    },
    telemetry: {
      beforeMs: c.int('CONSOLE_TELEMETRY_BEFORE_S', 300, { min: 0, max: 86_400 }) * 1000,
      afterMs: c.int('CONSOLE_TELEMETRY_AFTER_S', 120, { min: 0, max: 86_400 }) * 1000,
      maxScan: c.int('CONSOLE_TELEMETRY_MAX_SCAN', 50_000, { min: 100, max: 5_000_000 }),
      maxPoints: c.int('CONSOLE_TELEMETRY_MAX_POINTS', 3_000, { min: 10, max: 100_000 }),
    },
  });
  // Parsed after done(): a missing CONSOLE_USERS is already reported there together with the rest.
  const users = parseUsers(usersText);
  if (secret !== undefined && secret.length < 16) throw new ConfigError('CONSOLE_SESSION_SECRET', 'must be at least 16 characters');
  const trustedProxies = proxiesList.length === 0 ? NO_TRUSTED_PROXIES : named('CONSOLE_TRUSTED_PROXIES', () => parseTrustedProxies(proxiesList));
  const allowedOrigins = named('CONSOLE_ALLOWED_ORIGINS', () => parseAllowedOrigins(originsList));
  // Not frozen deeply: the users map and the proxy matcher are read-only by type.
  return Object.freeze({ ...config, users, sessionSecret: secret, trustedProxies, allowedOrigins });
}

function named<T>(variable: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError(variable, (err as Error).message);
  }
}

export type ConsoleConfig = ReturnType<typeof readConsoleConfig>;
