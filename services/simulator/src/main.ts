/**
 * Simulator process: config -> MQTT 5 connections (one per car with its own certificate, or one
 * for the fleet as a gateway) -> fleet or replay -> paced publishing until done or signalled. The
 * same connections listen for the cars' alerts and maintenance state and send receipts.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, connectMqtt, createLogger, createMetricsRegistry, exportReadiness, mqttOptions, onShutdown, runMain, startHealthServer } from '@pitwall/common';
import { connectCars, singleClient } from './car-clients.js';
import { readSimulatorConfig } from './config.js';
import { parseCsv } from './csv.js';
import { groundTruthLine, toFailureSpec } from './failures.js';
import { createFleet } from './fleet.js';
import { createCarInbox } from './inbox.js';
import { createSimulator } from './simulator.js';

/** Every car's certificate and key, read up front so a missing one fails at start. */
function readCarCredentials(dir: string, ids: readonly string[]): (id: string) => { cert: string; key: string } {
  const creds = new Map<string, { cert: string; key: string }>();
  for (const id of ids) {
    const read = (ext: string): string => {
      try {
        return readFileSync(path.join(dir, `${id}.${ext}`), 'utf8');
      } catch {
        throw new Error(`no ${id}.${ext}: issue the fleet's certificates with \`npm run pki -- cars <prefix> <count>\` or \`npm run pki -- issue car ${id}\``);
      }
    };
    creds.set(id, { cert: read('pem'), key: read('key') });
  }
  return (id) => creds.get(id)!;
}

runMain('simulator', async () => {
  const config = readSimulatorConfig(process.env);
  const log = createLogger({ service: 'simulator', level: config.common.logLevel });

  const fileStep = <T>(variable: string, path: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new ConfigError(variable, `${path}: ${(err as Error).message}`);
    }
  };
  const replay = config.replayCsv === undefined ? undefined : fileStep('SIM_REPLAY_CSV', config.replayCsv, () => parseCsv(readFileSync(config.replayCsv!, 'utf8')));
  const truthFile = config.groundTruthFile;
  if (truthFile !== undefined) fileStep('SIM_GROUND_TRUTH_FILE', truthFile, () => appendFileSync(truthFile, ''));

  const startTs = Date.now();
  const fleet = createFleet({ cars: config.cars, seed: config.seed, failures: config.failures.map((p) => toFailureSpec(p, startTs)) });
  const clientId = `pitwall-simulator-${randomBytes(4).toString('hex')}`;
  // Clean start: mqtt.js then subscribes the cars' topics again on every reconnect, and it resends
  // QoS 1 readings that were in flight or queued while the broker was away either way.
  // One metrics registry for the process, served on the health port's /metrics.
  const metrics = createMetricsRegistry();
  const vehicleIds = replay ? [...new Set(replay.map((r) => r.vehicleId))] : fleet.vehicleIds;
  const certDir = config.certDir;
  const client =
    certDir === undefined
      ? singleClient(await connectMqtt(config.common.mqtt.url, mqttOptions(config.common, { clientId, clean: true, protocolVersion: 5 }), log))
      : await connectCars({
          url: config.common.mqtt.url,
          vehicleIds,
          base: mqttOptions(config.common, { clean: true, protocolVersion: 5 }),
          credentials: fileStep('SIM_CERT_DIR', certDir, () => readCarCredentials(certDir, vehicleIds)),
          clientId: (id) => `${id}-${clientId.slice(-8)}`,
          log,
        });
  const inbox = createCarInbox({
    client,
    vehicleIds,
    log,
    receipts: config.receipts,
    metrics,
  });
  await inbox.start();
  const checks = { mqtt: () => client.connected };
  exportReadiness(metrics, () => ({ mqtt: checks.mqtt() }));
  const health = await startHealthServer(config.healthPort, checks, { metrics });

  const simulator = createSimulator({
    client,
    fleet,
    log,
    metrics,
    ratePerCarHz: config.rateHz,
    timeScale: config.timeScale,
    maxPacketSize: () => client.maxPacketSize(),
    ...(replay ? { replay } : { startTs }),
    ...(config.durationMs === undefined ? {} : { durationMs: config.durationMs }),
    groundTruth: (e) => {
      if (truthFile === undefined) return;
      try {
        appendFileSync(truthFile, groundTruthLine(e));
      } catch (err) {
        log.error('cannot write ground truth', { err, path: truthFile });
      }
    },
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await simulator.stop();
      inbox.stop();
      await health.close();
      // Not forced: receipts handed to the client are still acknowledged before it disconnects.
      await client.endAsync();
      log.info('simulator closed', { ...simulator.stats(), ...inbox.stats() });
    })());
  onShutdown(log, close);
  const source = replay ? { replay: config.replayCsv, readings: replay.length } : { cars: fleet.vehicleIds.length, failures: fleet.failures?.length ?? 0 };
  log.info('simulator ready', { mqtt: config.common.mqtt.url, connections: client.connections, ...source });
  simulator.start();
  await simulator.done;
  await close();
});
