/**
 * Why a connection attempt failed, in a few kinds a run can count: a fleet that cannot connect
 * should say whether the broker was slow (no CONNACK in time), refused it (a CONNACK reason), reset
 * or refused the socket, or failed the TLS handshake.
 */
import type { Counters } from './messages.js';

export const CONNECT_ERROR_KINDS = ['timeout', 'refused', 'reset', 'tls', 'other'] as const;
export type ConnectErrorKind = (typeof CONNECT_ERROR_KINDS)[number];

/** The worker counter of each kind (counters are flat numbers, summed across workers). */
export const ERROR_COUNTER = {
  timeout: 'errorsTimeout',
  refused: 'errorsRefused',
  reset: 'errorsReset',
  tls: 'errorsTls',
  other: 'errorsOther',
} as const satisfies Record<ConnectErrorKind, keyof Counters>;

/** The counters' errors by kind. */
export function errorKindsOf(c: Counters): Record<ConnectErrorKind, number> {
  return Object.fromEntries(CONNECT_ERROR_KINDS.map((k) => [k, c[ERROR_COUNTER[k]]])) as Record<ConnectErrorKind, number>;
}

export function connectErrorKind(err: Error & { code?: unknown }): ConnectErrorKind {
  const code = typeof err.code === 'string' ? err.code : '';
  // car-client.ts's own errors.
  if (/no CONNACK within/.test(err.message) || code === 'ETIMEDOUT') return 'timeout';
  if (/CONNACK refused/.test(err.message)) return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || code === 'ECONNABORTED') return 'reset';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /certificate|handshake|SSL routines/i.test(err.message)) return 'tls';
  return 'other';
}
