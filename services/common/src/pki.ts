/**
 * The fleet's certificate authority: one local CA (ECDSA P-256) that issues every MQTT identity
 * and revokes it through a CRL the broker checks.
 *
 * Identities are the certificate's CN, which Mosquitto takes as the username
 * (`use_identity_as_username`) and its ACL file matches:
 *   car      CN = the vehicle id; may use only its own vehicles/<id>/... topics
 *   service  CN = pitwall-<name> (pitwall-ingest, pitwall-dispatch)
 *   gateway  CN = pitwall-gateway: speaks for many cars over one connection (a telematics gateway,
 *            the load generator's multiplexed mode); the file name tells gateways apart
 *   server   a TLS server certificate (CN = name, SANs for its DNS names and IPs)
 * Car ids starting with "pitwall-" are refused, so a car can never be issued a service's name.
 *
 * Folder layout (ca.key and every *.key are mode 600):
 *   ca.pem ca.key crl.pem index.json   issued/<kind>/<file>.pem and .key
 * index.json lists what was issued (serial, CN, expiry) and what was revoked; crl.pem is re-signed
 * from it on every revoke and by ensureCa, and is valid for CRL_DAYS: OpenSSL refuses every client
 * once the CRL has expired, so whoever runs the broker refreshes it (scripts/infra.sh does on `up`).
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it loaded first
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { InvalidInputError } from './errors.js';
import { checkVehicleId } from './vehicle-id.js';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
export const CA_DAYS = 3650;
export const CRL_DAYS = 365;
export const SERVICE_PREFIX = 'pitwall-';
export const GATEWAY_CN = 'pitwall-gateway';

export type IdentityKind = 'car' | 'service' | 'gateway' | 'server';
const KINDS: readonly IdentityKind[] = ['car', 'service', 'gateway', 'server'];

export interface IssueRequest {
  kind: IdentityKind;
  /** car: the vehicle id; service: e.g. "ingest"; gateway: a label; server: e.g. "mosquitto". */
  name: string;
  /** server only: DNS names and IP addresses it answers on. Default localhost and 127.0.0.1. */
  hosts?: readonly string[];
  days?: number;
}

export interface IssuedIdentity {
  kind: IdentityKind;
  name: string;
  cn: string;
  serial: string;
  notAfter: string;
  certPem: string;
  keyPem: string;
}

export interface IndexEntry {
  kind: IdentityKind;
  name: string;
  cn: string;
  serial: string;
  notAfter: string;
  revokedAt?: string;
}

interface Index {
  version: 1;
  issued: IndexEntry[];
}

export interface Ca {
  readonly dir: string;
  readonly certPem: string;
  /** Issues in memory only: nothing is written or recorded (load tests' short-lived cars). */
  issueEphemeral(req: IssueRequest): Promise<IssuedIdentity>;
  /** Issues, records in index.json and writes issued/<kind>/<name>.pem and .key. */
  issue(req: IssueRequest): Promise<IssuedIdentity & { certFile: string; keyFile: string }>;
  /** Revokes every unrevoked certificate of that identity and re-signs crl.pem. Returns how many. */
  revoke(kind: IdentityKind, name: string): Promise<number>;
  /** Signs crl.pem again from index.json (fresh thisUpdate/nextUpdate). */
  writeCrl(): Promise<void>;
  list(): readonly IndexEntry[];
  /** Where issue() writes that identity's files. */
  files(kind: IdentityKind, name: string): { certFile: string; keyFile: string };
}

export function isIdentityKind(s: string): s is IdentityKind {
  return (KINDS as readonly string[]).includes(s);
}

/** The CN a certificate for this identity carries; throws InvalidInputError for names no CA may issue. */
export function commonName(kind: IdentityKind, name: string): string {
  const label = (n: string): string => {
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(n)) throw new InvalidInputError('pki.name.invalid', `${kind} name "${n.slice(0, 60)}" must be 1-41 of a-z 0-9 -`);
    return n;
  };
  switch (kind) {
    case 'car':
      checkVehicleId(name);
      if (name.toLowerCase().startsWith(SERVICE_PREFIX)) throw new InvalidInputError('pki.name.reserved', `vehicle id "${name}" starts with "${SERVICE_PREFIX}", which names services`);
      return name;
    case 'service':
      return SERVICE_PREFIX + label(name);
    case 'gateway':
      label(name);
      return GATEWAY_CN;
    case 'server':
      return label(name);
  }
}

const pemBody = (label: string, der: ArrayBuffer): string => x509.PemConverter.encode(der, label) + '\n';

async function importKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pem)[0]!, ALG, false, ['sign']);
}

function writeSecret(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

function writePublic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** A positive 128-bit serial, as hex. */
const newSerial = (): string => {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString('hex');
};

/** Opens the CA in `dir`, creating it (and an empty CRL) if there is none. */
export async function ensureCa(dir: string, opts: { name?: string } = {}): Promise<Ca> {
  const caPem = path.join(dir, 'ca.pem');
  const caKeyFile = path.join(dir, 'ca.key');
  if (!existsSync(caPem) || !existsSync(caKeyFile)) {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: `CN=${opts.name ?? 'Pitwall fleet CA'}`,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + CA_DAYS * DAY_MS),
      signingAlgorithm: ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeSecret(caKeyFile, pemBody('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)));
    writePublic(caPem, cert.toString('pem') + '\n');
    writePublic(path.join(dir, 'index.json'), JSON.stringify({ version: 1, issued: [] }, null, 1) + '\n');
  }
  const ca = await openCa(dir);
  await ca.writeCrl();
  return ca;
}

/** Opens an existing CA; throws if `dir` holds none. */
export async function openCa(dir: string): Promise<Ca> {
  const certPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  const caCert = new x509.X509Certificate(certPem);
  const caKey = await importKey(readFileSync(path.join(dir, 'ca.key'), 'utf8'));
  const indexFile = path.join(dir, 'index.json');
  const readIndex = (): Index => (existsSync(indexFile) ? (JSON.parse(readFileSync(indexFile, 'utf8')) as Index) : { version: 1, issued: [] });
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caCert);
  const files = (kind: IdentityKind, name: string) => {
    commonName(kind, name);
    const base = path.join(dir, 'issued', kind, name);
    return { certFile: `${base}.pem`, keyFile: `${base}.key` };
  };

  const issueEphemeral = async (req: IssueRequest): Promise<IssuedIdentity> => {
    const cn = commonName(req.kind, req.name);
    const days = req.days ?? (req.kind === 'server' ? 825 : 365);
    if (!Number.isInteger(days) || days < 1 || days > CA_DAYS) throw new InvalidInputError('pki.days.invalid', `days must be an integer 1-${CA_DAYS}, got ${days}`);
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const serial = newSerial();
    const notAfter = new Date(Math.min(Date.now() + days * DAY_MS, caCert.notAfter.getTime()));
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([req.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      aki,
    ];
    if (req.kind === 'server') {
      const hosts = req.hosts?.length ? req.hosts : ['localhost', '127.0.0.1'];
      extensions.push(new x509.SubjectAlternativeNameExtension(hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))));
    }
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${cn}`,
      issuer: caCert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter,
      signingAlgorithm: ALG,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions,
    });
    return {
      kind: req.kind,
      name: req.name,
      cn,
      serial: cert.serialNumber,
      notAfter: notAfter.toISOString(),
      certPem: cert.toString('pem') + '\n',
      keyPem: pemBody('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    };
  };

  const ca: Ca = {
    dir,
    certPem,
    issueEphemeral,
    async issue(req) {
      const id = await issueEphemeral(req);
      const f = files(req.kind, req.name);
      writeSecret(f.keyFile, id.keyPem);
      writePublic(f.certFile, id.certPem);
      const index = readIndex();
      index.issued.push({ kind: id.kind, name: id.name, cn: id.cn, serial: id.serial, notAfter: id.notAfter });
      writePublic(indexFile, JSON.stringify(index, null, 1) + '\n');
      return { ...id, ...f };
    },
    async revoke(kind, name) {
      commonName(kind, name);
      const index = readIndex();
      const now = new Date().toISOString();
      let n = 0;
      for (const e of index.issued) {
        if (e.kind === kind && e.name === name && e.revokedAt === undefined) {
          e.revokedAt = now;
          n++;
        }
      }
      writePublic(indexFile, JSON.stringify(index, null, 1) + '\n');
      await ca.writeCrl();
      return n;
    },
    async writeCrl() {
      const revoked = readIndex().issued.filter((e) => e.revokedAt !== undefined);
      const crl = await x509.X509CrlGenerator.create({
        issuer: caCert.subject,
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date(Date.now() + CRL_DAYS * DAY_MS),
        signingAlgorithm: ALG,
        signingKey: caKey,
        extensions: [aki],
        entries: revoked.map((e) => ({ serialNumber: e.serial, revocationDate: new Date(e.revokedAt!), reason: x509.X509CrlReason.keyCompromise })),
      });
      // OpenSSL reads only the "X509 CRL" PEM label (the library writes "CRL").
      writePublic(path.join(dir, 'crl.pem'), pemBody('X509 CRL', crl.rawData));
    },
    list: () => readIndex().issued,
    files,
  };
  return ca;
}
