/**
 * A fleet profile on the real brokers: ingest started with INGEST_FLEET_PROFILE=cardata-v1 takes
 * readings in the reference demo's units (psi, a battery fraction, a 400 V-class pack), writes them
 * to vehicle.telemetry in Pitwall's units with only the real anomalies flagged, and dead-letters a
 * reading that lacks a field with the payload's field name in the reason. A profile that does not
 * exist stops ingest at start, naming the variable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { connectMqtt, createAvroCodec, defaultSchemasDir, DLQ_HEADER, loadSchemaFile, silentLogger, type TelemetryRecord } from '@pitwall/common';
import { CARDATA_FAILING, CARDATA_HEALTHY, collect } from '@pitwall/common/testing';
import { adminSchemaStore, INFRA, isolatedEnv, kafkaClientConfig, REPO, runId, startService, waitReady } from './support/stack.js';
import { asGateway } from './support/identities.js';

const HEALTHY = CARDATA_HEALTHY;
const FAILING = CARDATA_FAILING;

test('ingest with the cardata-v1 profile: converted to Pitwall units, real anomalies flagged, missing field dead-lettered', { timeout: 120_000 }, async (t) => {
  const id = runId();
  const env: Record<string, string> = { ...isolatedEnv(id), INGEST_FLEET_PROFILE: 'cardata-v1', INGEST_LINGER_MS: '20' };
  const ingest = await startService('ingest', env, `fleet-profile-${id}`);
  t.after(async () => void (await ingest.stop()));
  await waitReady([ingest]);

  const kafka = new Kafka({ clientId: `e2e-${id}`, ...kafkaClientConfig(), logLevel: logLevel.NOTHING });
  const codec = await createAvroCodec<TelemetryRecord>(adminSchemaStore(), `${env.TOPIC_TELEMETRY!}-value`, await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  const telemetry = await collect(kafka, { topic: env.TOPIC_TELEMETRY!, decode: codec });
  const dlq = await collect(kafka, { topic: env.TOPIC_TELEMETRY_DLQ! });
  t.after(() => Promise.all([telemetry.stop(), dlq.stop()]));

  const publisher = await connectMqtt(INFRA.mqtt, { protocolVersion: 5, clientId: `e2e-pub-${id}`, ...(await asGateway(INFRA.mqtt)) }, silentLogger);
  t.after(() => publisher.endAsync());
  const ts = Date.now() - 5_000;
  const { battery_voltage: _omitted, ...lacking } = HEALTHY;
  await publisher.publishAsync(`vehicles/ok${id}/telemetry`, JSON.stringify({ ts, ...HEALTHY }), { qos: 1 });
  await publisher.publishAsync(`vehicles/sick${id}/telemetry`, JSON.stringify({ ts, ...FAILING }), { qos: 1 });
  await publisher.publishAsync(`vehicles/gap${id}/telemetry`, JSON.stringify({ ts, ...lacking }), { qos: 1 });

  await telemetry.waitFor(2, 30_000, 'both complete readings');
  await dlq.waitFor(1, 30_000, 'the reading without battery_voltage');
  const byCar = new Map(telemetry.values().map((r) => [r.vehicle_id, r]));
  const ok = byCar.get(`ok${id}`)!;
  const sick = byCar.get(`sick${id}`)!;
  assert.deepEqual(ok.out_of_range, []);
  assert.equal(ok.tire_pressure_1_1, 221); // 32 psi in kPa
  assert.equal(ok.tire_pressure_2_1, 234);
  assert.ok(Math.abs((ok.battery_percentage as number) - 82.654595) < 1e-9);
  assert.equal(ok.battery_voltage, 246.12367);
  assert.deepEqual(sick.out_of_range, ['coolant_temp', 'battery_percentage']);
  assert.equal(sick.tire_pressure_2_2, 138); // 20 psi: low, still plausible
  const [dead] = dlq.records;
  assert.equal(dead!.key, `gap${id}`);
  assert.equal(dead!.headers[DLQ_HEADER.reason], 'field.missing');
  assert.match(dead!.headers[DLQ_HEADER.message] ?? '', /field "battery_voltage" is missing/);
});

test('an unknown INGEST_FLEET_PROFILE stops ingest at start, naming the variable', { timeout: 60_000 }, async () => {
  const env = { ...process.env, ...isolatedEnv(runId()), INGEST_FLEET_PROFILE: 'no-such-fleet' };
  const outcome = await new Promise<{ code: number | null; output: string }>((resolve) =>
    execFile(process.execPath, [path.join(REPO, 'services/ingest/dist/src/main.js')], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
    ),
  );
  assert.notEqual(outcome.code, 0);
  // The JSON error log line: {"level":"error","msg":"failed to start","error":"INGEST_FLEET_PROFILE: ...","variable":...}
  assert.match(outcome.output, /INGEST_FLEET_PROFILE: no fleet profile \\"no-such-fleet\\"/);
  assert.match(outcome.output, /"variable":"INGEST_FLEET_PROFILE"/);
});
