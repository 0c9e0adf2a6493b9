import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectErrorKind } from '../src/connect-errors.js';

const withCode = (message: string, code?: string): Error & { code?: string } => Object.assign(new Error(message), code === undefined ? {} : { code });

test('connect errors are told apart by kind', () => {
  const cases: [Error, string][] = [
    [withCode('lt1-00001: no CONNACK within 30000 ms'), 'timeout'],
    [withCode('connect ETIMEDOUT 127.0.0.1:8883', 'ETIMEDOUT'), 'timeout'],
    [withCode('lt1-00001: CONNACK refused with reason 135'), 'refused'],
    [withCode('read ECONNRESET', 'ECONNRESET'), 'reset'],
    [withCode('write EPIPE', 'EPIPE'), 'reset'],
    [withCode('connect ECONNREFUSED 127.0.0.1:8883', 'ECONNREFUSED'), 'reset'],
    [withCode('Client network socket disconnected before secure TLS connection was established', 'ECONNRESET'), 'reset'],
    [withCode('certificate has expired', 'CERT_HAS_EXPIRED'), 'tls'],
    [withCode('error:0A000418:SSL routines::tlsv1 alert unknown ca', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'tls'],
    [withCode("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), 'tls'],
    [withCode('something else'), 'other'],
  ];
  for (const [err, kind] of cases) assert.equal(connectErrorKind(err), kind, err.message);
});
