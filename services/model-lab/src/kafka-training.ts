/**
 * Training data from Kafka history: a range of vehicle.telemetry (read by kafka-history.ts,
 * decoded with the telemetry v2 reader, so v1 records resolve too) -> per-vehicle windows with the
 * window definition and computeFeatures the windowing service uses.
 *
 * Per vehicle, readings are sorted by event time and a repeated event time is counted once (the
 * first by offset), as windowing does with MQTT redeliveries. A window is kept when it has at least
 * the events the scoring service requires to score one (window x rate x minCoverage), so the model
 * learns from the same kind of window it will judge. Records with a pitwall.control header (idle
 * markers of windowing) are skipped; undecodable ones are counted and skipped.
 */
import { createSchemaStore, defaultSchemasDir, loadSchemaFile, SENSOR_NAMES, windowDef, type Env, type TelemetryRecord } from '@pitwall/common';
import type { Reading } from '@pitwall/simulator';
import { createReadOnlyDecoder, describeRead, historyKafka, readHistoryConnection, readTopicRange, resolveTopicRange, type HistoryRecord, type ReadOnlyDecoder } from './kafka-history.js';
import { createWindower, RATE_HZ, WINDOW_SIZE_MS, type WindowSample } from './training.js';

export const CONTROL_HEADER = 'pitwall.control';

export interface TelemetryDecodeResult {
  readings: Reading[];
  control: number;
  undecodable: number;
}

export async function decodeTelemetry(records: readonly HistoryRecord[], decoder: ReadOnlyDecoder<TelemetryRecord>): Promise<TelemetryDecodeResult> {
  const readings: Reading[] = [];
  let control = 0;
  let undecodable = 0;
  for (const r of records) {
    if (r.headers?.[CONTROL_HEADER] !== undefined) {
      control++;
      continue;
    }
    if (!r.value) {
      undecodable++;
      continue;
    }
    let rec: TelemetryRecord;
    try {
      rec = await decoder.decode(r.value);
    } catch {
      undecodable++;
      continue;
    }
    const values: Record<string, number> = {};
    for (const name of SENSOR_NAMES) values[name] = rec[name] as number;
    readings.push({ vehicleId: rec.vehicle_id, ts: Number(rec.ts), values });
  }
  return { readings, control, undecodable };
}

/**
 * Windows of readings in read order (partition, offset). Stable: the same readings in the same
 * order always give the same windows in the same order (vehicle id, then window start).
 */
export function historyWindows(readings: readonly Reading[], opts: { minCoverage: number; windowSizeMs?: number }): WindowSample[] {
  const sizeMs = opts.windowSizeMs ?? WINDOW_SIZE_MS;
  const byVehicle = new Map<string, Reading[]>();
  for (const r of readings) {
    let list = byVehicle.get(r.vehicleId);
    if (!list) byVehicle.set(r.vehicleId, (list = []));
    list.push(r);
  }
  const minEvents = Math.max(1, Math.ceil((sizeMs / 1000) * RATE_HZ * opts.minCoverage));
  const windower = createWindower(windowDef(sizeMs), { minEvents });
  for (const id of [...byVehicle.keys()].sort()) {
    // Array.prototype.sort is stable: equal event times keep their read order, the first is kept.
    const list = byVehicle.get(id)!.sort((a, b) => a.ts - b.ts);
    let last = Number.NaN;
    for (const r of list) {
      if (r.ts === last) continue;
      last = r.ts;
      windower.push(r);
    }
  }
  return windower.flush().sort((a, b) => (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : a.windowStart - b.windowStart));
}

export interface KafkaTrainingOptions {
  /** Where KAFKA_BROKERS, SCHEMA_REGISTRY_URL and TOPIC_TELEMETRY come from (the command line passes process.env). */
  env: Env;
  brokers?: string | undefined;
  registry?: string | undefined;
  topic?: string | undefined;
  from: string;
  to: string;
  minCoverage: number;
  timeoutMs: number;
  onProgress: (line: string) => void;
}

/**
 * Reads the telemetry range and returns trainModel's `windows` input; `trainingData.kafka` records
 * exactly what was read: topic, the bounds as given, per partition [fromOffset, toOffset) with record
 * counts and first/last record timestamps, and the event-time span of the windows.
 */
export async function kafkaTrainingWindows(o: KafkaTrainingOptions): Promise<NonNullable<import('./training.js').TrainOptions['windows']>> {
  const conn = readHistoryConnection(o.env, { brokers: o.brokers, registry: o.registry, topicDefault: 'telemetry' });
  const topic = o.topic ?? conn.defaultTopic;
  const kafka = historyKafka(conn.brokers, 'pitwall-train', conn.security);
  const admin = kafka.admin();
  await admin.connect();
  let range;
  try {
    range = await resolveTopicRange(admin, topic, o.from, o.to);
  } finally {
    await admin.disconnect();
  }
  const started = Date.now();
  const read = await readTopicRange(kafka, range, { timeoutMs: o.timeoutMs });
  const decoder = createReadOnlyDecoder<TelemetryRecord>(createSchemaStore(conn.registryUrl), await loadSchemaFile(defaultSchemasDir(), 'telemetry', 2));
  const decoded = await decodeTelemetry(read.records, decoder);
  const all = historyWindows(decoded.readings, { minCoverage: o.minCoverage });
  const described = describeRead(read);
  o.onProgress(
    `kafka: ${described.records} records from ${topic} ` +
      described.partitions.map((p) => `${p.partition}:[${p.fromOffset},${p.toOffset})`).join(' ') +
      ` (${decoded.readings.length} readings, ${decoded.control} control, ${decoded.undecodable} undecodable) -> ${all.length} windows ` +
      `in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return {
    all,
    source: `kafka:${topic}`,
    trainingData: {
      kafka: { ...described, readings: decoded.readings.length, controlRecords: decoded.control, undecodable: decoded.undecodable, minCoverage: o.minCoverage },
    },
  };
}
