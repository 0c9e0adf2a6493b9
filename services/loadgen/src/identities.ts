/**
 * The load generator's MQTT identities on a secure broker (TLS, client certificates, per-car ACL):
 * each connection presents a certificate of the fleet CA, issued in memory with
 * `openCa(dir).issueEphemeral` (nothing written: a run may have 15,000 cars and is thrown away).
 *   car mode      CN = the connection's vehicle id; the broker lets it use only its own topics
 *   gateway mode  CN = pitwall-gateway (kind 'gateway', file name loadgen-<n>): speaks for its cars
 * Every connection also checks the broker's certificate against the CA's ca.pem.
 *
 * Issuing costs CPU (a P-256 key and an ECDSA signature per certificate, in @peculiar/x509): it is
 * done before the run starts, with a few in flight at once, and timed (IdentityStats). So is each
 * connection's TLS context (its key and certificates parsed by OpenSSL, ~2 ms each): a real car
 * loads its identity once, and the connect ramp then measures the handshakes, not PEM parsing.
 *
 * A car may not write its own retained maintenance state (dispatch writes it), so the coordinator
 * clears the run's leftovers as dispatch would: clearRetainedAsDispatch.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import mqtt from 'mqtt';
import { vehicleIdsFor } from '@pitwall/simulator';
import type { Mode } from './args.js';
import type { IdentityStats } from './messages.js';
import type { ConnectionSpec } from './partition.js';

/** One connection's identity: the CA to check the broker against, its certificate and key (PEM), and the TLS context made of them. */
export interface Tls {
  ca: string;
  cert: string;
  key: string;
  secureContext: SecureContext;
}

/** Certificates issued at once: the CA's signing and key generation run on libuv's thread pool. */
const CONCURRENCY = 8;

/** The fleet CA, loaded only when a run uses TLS (@peculiar/x509 is a large module). */
async function openFleetCa(pkiDir: string) {
  const { openCa } = await import('@pitwall/common/pki');
  return openCa(pkiDir);
}

/** What the CA issues for a connection: its car (car mode) or a gateway named after it. */
export function identityFor(mode: Mode, spec: ConnectionSpec): { kind: 'car' | 'gateway'; name: string } {
  return mode === 'car' ? { kind: 'car', name: vehicleIdsFor(1, spec.label)[0]! } : { kind: 'gateway', name: `loadgen-${spec.index + 1}` };
}

/** The CA is there and usable (ca.pem and ca.key readable); throws with the reason otherwise. */
export async function checkCa(pkiDir: string): Promise<void> {
  try {
    await openFleetCa(pkiDir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ENOENT' ? `no ${path.basename(e.path ?? 'ca.pem')}` : e.message;
    throw new Error(`no usable fleet CA in ${pkiDir} (${reason}); run scripts/infra.sh up or npm run pki -- init, or pass --pki DIR`, { cause: err });
  }
}

/** One identity per connection, in order; `onProgress` after every 500. */
export async function issueIdentities(pkiDir: string, mode: Mode, specs: readonly ConnectionSpec[], onProgress: (done: number) => void = () => {}): Promise<{ tls: Tls[]; stats: IdentityStats }> {
  const opening = performance.now();
  const ca = await openFleetCa(pkiDir);
  // Timed from here: loading the x509 library and the CA key is paid once per process.
  const started = performance.now();
  const cpu = process.cpuUsage();
  const tls = new Array<Tls>(specs.length);
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < specs.length) {
      const k = next++;
      const id = await ca.issueEphemeral(identityFor(mode, specs[k]!));
      pem[k] = { ca: ca.certPem, cert: id.certPem, key: id.keyPem };
      if (++done % 500 === 0) onProgress(done);
    }
  };
  const pem = new Array<Omit<Tls, 'secureContext'>>(specs.length);
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, specs.length) }, lane));
  const used = process.cpuUsage(cpu);
  const issuedAt = performance.now();
  for (let k = 0; k < pem.length; k++) tls[k] = { ...pem[k]!, secureContext: createSecureContext(pem[k]) };
  return {
    tls,
    stats: {
      kind: mode,
      issued: specs.length,
      setupMs: Math.round(started - opening),
      wallMs: Math.round(issuedAt - started),
      cpuMs: Math.round((used.user + used.system) / 1000),
      contextMs: Math.round(performance.now() - issuedAt),
    },
  };
}

/**
 * Clears the retained maintenance state of these cars (an empty retained message each) with
 * dispatch's identity, the only one the broker lets write it. Resolves with how many were cleared.
 */
export async function clearRetainedAsDispatch(url: string, pkiDir: string, vehicleIds: readonly string[]): Promise<number> {
  if (vehicleIds.length === 0) return 0;
  const ca = await openFleetCa(pkiDir);
  const id = await ca.issueEphemeral({ kind: 'service', name: 'dispatch' });
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: `pitwall-loadgen-clear-${process.pid}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ca: readFileSync(path.join(pkiDir, 'ca.pem'), 'utf8'),
    cert: id.certPem,
    key: id.keyPem,
  });
  try {
    const results = await Promise.allSettled(vehicleIds.map((v) => client.publishAsync(`vehicles/${v}/maintenance`, '', { qos: 1, retain: true })));
    return results.filter((r) => r.status === 'fulfilled').length;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}
