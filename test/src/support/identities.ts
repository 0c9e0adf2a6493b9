/**
 * MQTT identities for tests: every client connects as the secure setup requires, with a
 * certificate of the fleet CA that serves the broker it talks to.
 *
 * Brokers are registered with their CA folder: the shared one (scripts/infra.sh's, PITWALL_PKI_DIR
 * or $PITWALL_HOME/pki) is known from the start; private brokers register theirs. Certificates are
 * issued on first use and kept in the CA folder, so runs reuse them.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCa, openCa, type Ca, type IdentityKind } from '@pitwall/common/pki';
import { fileURLToPath } from 'node:url';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { silentLogger } from '@pitwall/common';
import { connectCars, type FleetClient } from '@pitwall/simulator';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const SHARED_PKI = process.env.PITWALL_PKI_DIR ?? path.join(process.env.PITWALL_HOME ?? path.join(REPO, '.pitwall'), 'pki');

const caDirs = new Map<string, string>(); // broker "host:port" -> CA folder
const cas = new Map<string, Promise<Ca>>();

const brokerKey = (url: string): string => new URL(url).host;

/** Records which CA folder serves the broker at `url`. */
export function registerBroker(url: string, pkiDir: string): void {
  caDirs.set(brokerKey(url), pkiDir);
}

/** The CA folder of the broker at `url` (the shared one unless registered otherwise). */
export function pkiDirFor(url: string): string {
  return caDirs.get(brokerKey(url)) ?? SHARED_PKI;
}

function ca(dir: string): Promise<Ca> {
  let p = cas.get(dir);
  if (!p) {
    p = existsSync(path.join(dir, 'ca.key')) ? openCa(dir) : ensureCa(dir);
    cas.set(dir, p);
  }
  return p;
}

export interface IdentityFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** The identity's certificate files for the broker at `url`, issued if there are none yet. */
export async function identityFiles(url: string, kind: IdentityKind, name: string): Promise<IdentityFiles> {
  const dir = pkiDirFor(url);
  const authority = await ca(dir);
  const f = authority.files(kind, name);
  if (!existsSync(f.certFile)) await authority.issue({ kind, name });
  return { caFile: path.join(dir, 'ca.pem'), ...f };
}

/** mqtt.js TLS options (ca, cert, key) for connecting to `url` as that identity. */
export async function tlsAs(url: string, kind: IdentityKind, name: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = await identityFiles(url, kind, name);
  return { ca: readFileSync(f.caFile, 'utf8'), cert: readFileSync(f.certFile, 'utf8'), key: readFileSync(f.keyFile, 'utf8') };
}

/** A test client speaking for many cars: the gateway identity (CN pitwall-gateway). */
export const asGateway = (url: string): Promise<{ ca: string; cert: string; key: string }> => tlsAs(url, 'gateway', 'e2e');

/** MQTT_CA_FILE / MQTT_CERT_FILE / MQTT_KEY_FILE for a service started against `url`. */
export async function mqttEnvFor(url: string, kind: IdentityKind, name: string): Promise<Record<string, string>> {
  const f = await identityFiles(url, kind, name);
  return { MQTT_CA_FILE: f.caFile, MQTT_CERT_FILE: f.certFile, MQTT_KEY_FILE: f.keyFile };
}

/** Issues car certificates <prefix>-0001..<prefix>-<count> for `url`'s CA; returns their folder. */
export async function carCertDir(url: string, prefix: string, count: number): Promise<string> {
  for (let i = 1; i <= count; i++) await identityFiles(url, 'car', `${prefix}-${String(i).padStart(4, '0')}`);
  return path.join(pkiDirFor(url), 'issued', 'car');
}

export interface Observer {
  end(): Promise<void>;
}

/**
 * Watches what cars and operators receive, with the identities that may read it: car topics
 * (vehicles/...) as a gateway, the operators' feed (fleet/...) as pitwall-operators.
 */
export async function observe(url: string, clientId: string, topics: readonly string[], onMessage: (topic: string, payload: Buffer, packet: IPublishPacket) => void): Promise<Observer> {
  const groups: Array<[IdentityKind, string, string[]]> = [
    ['gateway', 'e2e', topics.filter((t) => t.startsWith('vehicles/'))],
    ['service', 'operators', topics.filter((t) => t.startsWith('fleet/'))],
  ];
  const clients: MqttClient[] = [];
  for (const [kind, name, subs] of groups) {
    if (subs.length === 0) continue;
    const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `${clientId}-${kind}`, clean: true, reconnectPeriod: 500, ...(await tlsAs(url, kind, name)) });
    c.on('message', onMessage);
    await c.subscribeAsync(subs, { qos: 1 });
    clients.push(c);
  }
  return { end: async () => void (await Promise.all(clients.map((c) => c.endAsync()))) };
}

/** Removes retained messages (cars' maintenance state) from the broker, as dispatch, their only writer. */
export async function clearRetained(url: string, topics: readonly string[]): Promise<void> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `e2e-clear-${Math.random().toString(36).slice(2, 8)}`, ...(await tlsAs(url, 'service', 'dispatch')) });
  try {
    for (const t of topics) await c.publishAsync(t, '', { qos: 1, retain: true });
  } finally {
    await c.endAsync();
  }
}

/** Each car's TLS options (CA, certificate, key) for connectCars, issued up front. */
export async function carCredentials(url: string, vehicleIds: readonly string[]): Promise<(id: string) => { ca: string; cert: string; key: string }> {
  const creds = new Map<string, { ca: string; cert: string; key: string }>();
  for (const v of vehicleIds) creds.set(v, await tlsAs(url, 'car', v));
  return (v) => creds.get(v)!;
}

/** Each car on its own TLS connection with its own certificate, as the simulator runs them (client ids `<car>-<run>`). */
export async function connectTestCars(url: string, vehicleIds: readonly string[], run: string): Promise<FleetClient> {
  return connectCars({
    url,
    vehicleIds,
    base: { protocolVersion: 5, clean: true, reconnectPeriod: 500 },
    credentials: await carCredentials(url, vehicleIds),
    clientId: (v) => `${v}-${run}`,
    log: silentLogger,
  });
}
