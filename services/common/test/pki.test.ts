import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commonName, ensureCa, GATEWAY_CN, openCa } from '../src/pki.js';
import { InvalidInputError } from '../src/errors.js';

const withDir = async (f: (dir: string) => Promise<void>): Promise<void> => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pki-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const names: Array<[Parameters<typeof commonName>[0], string, string | RegExp]> = [
  ['car', 'car-0001', 'car-0001'],
  ['car', 'VIN_1HGCM82633A004352', 'VIN_1HGCM82633A004352'],
  ['service', 'ingest', 'pitwall-ingest'],
  ['gateway', 'depot-7', GATEWAY_CN],
  ['server', 'broker', 'broker'],
  ['car', 'pitwall-ingest', /pki.name.reserved/],
  ['car', 'PITWALL-dispatch', /pki.name.reserved/],
  ['car', 'a/b', /vehicle_id.invalid/],
  ['car', '+', /vehicle_id.invalid/],
  ['car', '#', /vehicle_id.invalid/],
  ['service', 'In Gest', /pki.name.invalid/],
  ['gateway', '', /pki.name.invalid/],
];
for (const [kind, name, want] of names) {
  test(`commonName(${kind}, ${JSON.stringify(name)})`, () => {
    if (typeof want === 'string') assert.equal(commonName(kind, name), want);
    else
      assert.throws(
        () => commonName(kind, name),
        (e: unknown) => e instanceof InvalidInputError && want.test(e.reason),
      );
  });
}

test('a car certificate is signed by the CA, names the car, is for client auth, and its key is private', async () =>
  withDir(async (dir) => {
    const ca = await ensureCa(dir);
    const car = await ca.issue({ kind: 'car', name: 'car-0042' });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(readFileSync(car.certFile));
    assert.ok(cert.verify(caCert.publicKey), 'signed by the fleet CA');
    assert.ok(cert.checkIssued(caCert));
    assert.equal(cert.subject, 'CN=car-0042');
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'client authentication only');
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(car.keyFile))), 'key matches');
    assert.equal(statSync(car.keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dir, 'ca.key')).mode & 0o777, 0o600);
  }));

test('a server certificate carries its DNS names and IPs', async () =>
  withDir(async (dir) => {
    const ca = await ensureCa(dir);
    const s = await ca.issueEphemeral({ kind: 'server', name: 'broker', hosts: ['mqtt.fleet.example', '10.0.0.7'] });
    const cert = new X509Certificate(s.certPem);
    assert.equal(cert.checkHost('mqtt.fleet.example'), 'mqtt.fleet.example');
    assert.equal(cert.checkIP('10.0.0.7'), '10.0.0.7');
    assert.equal(cert.checkHost('other.example'), undefined);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  }));

test('revoke lists every certificate of the identity and only those; reopening the CA keeps them', async () =>
  withDir(async (dir) => {
    const ca = await ensureCa(dir);
    const a1 = await ca.issue({ kind: 'car', name: 'car-a' });
    const a2 = await ca.issue({ kind: 'car', name: 'car-a' });
    const b = await ca.issue({ kind: 'car', name: 'car-b' });
    assert.equal(await ca.revoke('car', 'car-a'), 2);
    assert.equal(await ca.revoke('car', 'car-a'), 0, 'nothing left to revoke');
    const again = await openCa(dir);
    const revoked = again
      .list()
      .filter((e) => e.revokedAt)
      .map((e) => e.serial)
      .sort();
    assert.deepEqual(revoked, [a1.serial, a2.serial].sort());
    assert.ok(!revoked.includes(b.serial));
    // The CRL is a DER "X509 CRL" PEM (the label OpenSSL reads) naming both serials.
    const crl = readFileSync(path.join(dir, 'crl.pem'), 'utf8');
    assert.match(crl, /^-----BEGIN X509 CRL-----/);
    const der = Buffer.from(crl.replace(/-----[A-Z0-9 ]+-----|\s/g, ''), 'base64');
    for (const s of [a1.serial, a2.serial]) assert.ok(der.includes(Buffer.from(s, 'hex')), `serial ${s} in the CRL`);
    assert.ok(!der.includes(Buffer.from(b.serial, 'hex')));
  }));

test('ensureCa keeps an existing CA', async () =>
  withDir(async (dir) => {
    const first = await ensureCa(dir);
    const second = await ensureCa(dir);
    assert.equal(second.certPem, first.certPem);
  }));
