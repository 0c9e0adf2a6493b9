import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureCa } from '@pitwall/common/pki';
import { checkCa, identityFor, issueIdentities } from '../src/identities.js';
import { connectionSpecs } from '../src/partition.js';

test('car mode: one certificate per connection, CN = its vehicle id, signed by the fleet CA; gateway mode: pitwall-gateway', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loadgen-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await ensureCa(dir);
  const ca = new X509Certificate(readFileSync(path.join(dir, 'ca.pem')));

  const cars = connectionSpecs('lt1', 3, 3);
  const { tls, stats } = await issueIdentities(dir, 'car', cars);
  assert.equal(tls.length, 3);
  assert.deepEqual({ kind: stats.kind, issued: stats.issued }, { kind: 'car', issued: 3 });
  assert.ok(stats.wallMs >= 0 && stats.cpuMs >= 0 && stats.setupMs >= 0 && stats.contextMs >= 0);
  assert.ok(
    tls.every((x) => x.secureContext.context),
    'a TLS context per connection',
  );
  tls.forEach((x, k) => {
    const cert = new X509Certificate(x.cert);
    assert.equal(cert.subject, `CN=lt1-0000${k + 1}-0001`);
    assert.ok(cert.verify(ca.publicKey), 'issued by the fleet CA');
    assert.ok(cert.checkPrivateKey(createPrivateKey(x.key)), 'the key belongs to the certificate');
    assert.equal(x.ca, ca.toString());
  });
  assert.deepEqual(identityFor('car', cars[1]!), { kind: 'car', name: 'lt1-00002-0001' });

  const gateways = connectionSpecs('lt1', 100, 2);
  const gw = await issueIdentities(dir, 'gateway', gateways);
  assert.deepEqual(
    gw.tls.map((x) => new X509Certificate(x.cert).subject),
    ['CN=pitwall-gateway', 'CN=pitwall-gateway'],
  );
  assert.deepEqual(identityFor('gateway', gateways[1]!), { kind: 'gateway', name: 'loadgen-2' });
});

test('a folder without a CA is refused with a message saying what to do', async () => {
  await assert.rejects(checkCa(path.join(os.tmpdir(), 'no-such-pitwall-ca')), /no usable fleet CA in .*no-such-pitwall-ca \(no ca\.pem\).*--pki/);
});
