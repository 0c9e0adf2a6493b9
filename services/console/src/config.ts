/**
 * Console configuration, read once in main.ts from an explicit environment.
 *
 *   CONSOLE_PORT                 HTTP port of the UI, the API and /healthz /readyz (default 8080)
 *   CONSOLE_USERS                required: "name:password,name2:password2" (a password may contain ':')
 *   CONSOLE_SESSION_SECRET       HMAC key of the session cookie (>= 16 chars); random per start if unset,
 *                                which signs everyone out on restart and does not work across replicas
 *   CONSOLE_SESSION_TTL_S        session lifetime (default 12 h)
 *   CONSOLE_COOKIE_SECURE        add `Secure` to the cookie (set it behind TLS; default false)
 *   CONSOLE_GROUP_ID_PREFIX      prefix of the throw-away consumer groups (default pitwall-console)
 *   CONSOLE_SCORES_LOOKBACK_S    how far back vehicle.scores is read at start (default 900)
 *   CONSOLE_TELEMETRY_BEFORE_S   chart range before an incident's first window (default 300)
 *   CONSOLE_TELEMETRY_AFTER_S    chart range after an incident's first window (default 120)
 *   CONSOLE_TELEMETRY_MAX_SCAN   records of the vehicle's partition read at most per chart (default 50000)
 *   CONSOLE_TELEMETRY_MAX_POINTS readings of the vehicle kept at most per chart (default 3000)
 *   TOPIC_PARTITIONS             partitions of topics the console creates when missing (default 3)
 */
import { ConfigError, configReader, readCommonConfig, type Env } from '@pitwall/common';

export function readConsoleConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'console');
  const usersText = c.str('CONSOLE_USERS');
  const secret = c.optional('CONSOLE_SESSION_SECRET');
  const port = c.int('CONSOLE_PORT', 8080, { min: 0, max: 65535 });
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
  return Object.freeze({ ...config, users, sessionSecret: secret });
}

export type ConsoleConfig = ReturnType<typeof readConsoleConfig>;

/** "name:password,name2:password2" -> name -> password. Throws a ConfigError naming CONSOLE_USERS. */
export function parseUsers(text: string): ReadonlyMap<string, string> {
  const users = new Map<string, string>();
  for (const entry of text.split(',')) {
    const item = entry.trim();
    if (item === '') continue;
    const colon = item.indexOf(':');
    const name = colon > 0 ? item.slice(0, colon).trim() : '';
    const password = colon > 0 ? item.slice(colon + 1) : '';
    if (name === '' || password === '') throw new ConfigError('CONSOLE_USERS', `expected "name:password" entries separated by commas, got an entry "${colon > 0 ? `${name}:***` : item.replace(/./g, '*').slice(0, 8)}"`);
    if (!/^[\w.@-]{1,64}$/.test(name)) throw new ConfigError('CONSOLE_USERS', `user name "${name}" may only contain letters, digits, . _ @ - (at most 64)`);
    if (users.has(name)) throw new ConfigError('CONSOLE_USERS', `user "${name}" is listed twice`);
    users.set(name, password);
  }
  if (users.size === 0) throw new ConfigError('CONSOLE_USERS', 'lists no user');
  return users;
}
