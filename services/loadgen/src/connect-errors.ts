/**
 * Why a connection attempt failed, in a few kinds a run can count: a fleet that cannot connect
 * should say whether the broker was slow (no CONNACK in time), refused it (a CONNACK reason), reset
 * or refused the socket, or failed the TLS handshake.
 */
export const CONNECT_ERROR_KINDS = ['timeout', 'refused', 'reset', 'tls', 'other'] as const;
export type ConnectErrorKind = (typeof CONNECT_ERROR_KINDS)[number];

export function connectErrorKind(err: Error & { code?: unknown }): ConnectErrorKind {
  const code = typeof err.code === 'string' ? err.code : '';
  // car-client.ts's own errors.
  if (/no CONNACK within/.test(err.message) || code === 'ETIMEDOUT') return 'timeout';
  if (/CONNACK refused/.test(err.message)) return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || code === 'ECONNABORTED') return 'reset';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /certificate|handshake|SSL routines/i.test(err.message)) return 'tls';
  return 'other';
}
