import { hostname } from 'node:os';
import { configReader, loadFleetProfile, readCommonConfig, type Env } from '@pitwall/common';

export function readIngestConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'ingest');
  return c.done({
    ...common,
    healthPort: c.int('HEALTH_PORT', 9101, { min: 0, max: 65535 }),
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 10_000 }),
    // A stable id per instance: the persistent MQTT session (and its unacknowledged messages) is bound to it.
    mqttClientId: c.str('INGEST_CLIENT_ID', `pitwall-ingest-${hostname()}`),
    subscription: c.str('INGEST_SUBSCRIPTION', '$share/ingest/vehicles/+/telemetry'),
    receiptSubscription: c.str('INGEST_RECEIPT_SUBSCRIPTION', '$share/pitwall-ingest/vehicles/+/alerts/receipt'),
    sessionExpirySeconds: c.int('INGEST_SESSION_EXPIRY_S', 86_400, { min: 0 }),
    // MQTT 5 receive maximum: at most this many readings delivered to this ingest and not yet
    // acknowledged (ingest acknowledges after Kafka did). The rest wait in the broker's queue for
    // the session, so a slow or cut-off Kafka cannot flood ingest's memory and event loop (the
    // protocol's default, 65,535, let a burst starve the keepalive and reconnect into duplicates).
    receiveMaximum: c.int('INGEST_RECEIVE_MAXIMUM', 10_000, { min: 1, max: 65_535 }),
    // Records per Kafka send; sends are also bounded by bytes (KAFKA_MAX_BATCH_BYTES, the topics'
    // max.message.bytes), which holds a batch of readings to a few thousand. One send is in flight at
    // a time, so the batch is ingest's rate under a backlog: 2,000 took 10-13k of 20k readings/s
    // offered here, 8,000 14-20k (the loadgen bench, 2026-12-04).
    maxBatch: c.int('INGEST_BATCH_MAX', 8000, { min: 1, max: 100_000 }),
    lingerMs: c.int('INGEST_LINGER_MS', 5, { min: 0, max: 10_000 }),
    maxPayloadBytes: c.int('INGEST_MAX_PAYLOAD_BYTES', 8192, { min: 256, max: 1_048_576 }),
    // A car's clock is untrusted: a reading further ahead of ingest's clock than this is dead-lettered.
    maxFutureSkewMs: c.int('INGEST_MAX_FUTURE_SKEW_MS', 120_000, { min: 0, max: 86_400_000 }),
    // A name in schemas/fleet-profiles/ or a file path (a slash in it); `pitwall` is the identity.
    profile: loadFleetProfile(c.str('INGEST_FLEET_PROFILE', 'pitwall'), 'INGEST_FLEET_PROFILE'),
  });
}

export type IngestServiceConfig = ReturnType<typeof readIngestConfig>;
