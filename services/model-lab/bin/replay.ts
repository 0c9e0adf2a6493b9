/**
 * Command line: `npm run replay -- --help`. Lists the alerts a model version would have raised for
 * a range of vehicle.features, without side effects (src/kafka-history.ts reads, src/replay.ts scores).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { createSchemaStore, defaultSchemasDir, loadSchemaFile, runCliIfMain } from '@pitwall/common';
import { createReadOnlyDecoder, describeRead, historyKafka, readHistoryConnection, readTopicRange, resolveTopicRange } from '../src/kafka-history.js';
import { DEFAULT_MIN_COVERAGE, loadModelDir, resolveVersion } from '@pitwall/model';
import { alertJsonLine, formatAlertTable, replayAlerts, type FeatureRecordLike, type ReplayInput } from '../src/replay.js';

const HELP = `Replay a range of vehicle.features through a model version and list the alerts it would raise.
Side-effect free: produces nothing, commits no offsets, registers no schema, creates no topic, no MQTT.

Usage: npm run replay -- (--model-dir DIR | --model DIR [--version N]) [options]

  --model-dir DIR       a version directory, e.g. models/pitwall-ae/1
  --model DIR           a model's folder, e.g. models/pitwall-ae, with --version N|latest (default latest)
  --topic T             topic to read            (default $TOPIC_FEATURES or vehicle.features)
  --from B              first record, inclusive  (default earliest)
  --to B                end of the range, exclusive (default latest: the end offset when the run starts)
                        B: earliest | latest | ISO time (2026-01-01T10:00:00Z) | ts:<epoch ms> |
                           offset:<n> (every partition) | <partition>:<offset>,... (only those partitions)
                        A time selects per partition the first record with timestamp >= it.
  --min-coverage F      windows with fewer events than window x rate x F are not scored, like the
                        scoring service                                      (default ${DEFAULT_MIN_COVERAGE})
  --json                one JSON object per alert on stdout (the alert record + source partition/offset);
                        the summary goes to stderr
  --brokers H:P,...     default $KAFKA_BROKERS or 127.0.0.1:9092
  --registry URL        default $SCHEMA_REGISTRY_URL or http://127.0.0.1:8081/apis/ccompat/v7
  --timeout S           give up when the range is not read after S seconds    (default 120)
  --help

Reading: a consumer in a one-off group (random id) with auto-commit off seeks each partition to the
start of the range and stops at its end; the empty group is deleted afterwards. Alerts are decided
and built exactly as the scoring service does: score > threshold, or the stuck-sensor detector
(over the windows in partition and offset order) calls a sensor stuck. Only windows of the model's
size are scored; others would go to another model. created_at = window_end, so two runs over the
same range print the same output.
`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'model-dir': { type: 'string' },
      model: { type: 'string' },
      version: { type: 'string', default: 'latest' },
      topic: { type: 'string' },
      from: { type: 'string', default: 'earliest' },
      to: { type: 'string', default: 'latest' },
      'min-coverage': { type: 'string', default: String(DEFAULT_MIN_COVERAGE) },
      json: { type: 'boolean', default: false },
      brokers: { type: 'string' },
      registry: { type: 'string' },
      timeout: { type: 'string', default: '120' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if ((values.model === undefined) === (values['model-dir'] === undefined)) throw new RangeError('give exactly one of --model-dir DIR or --model DIR (with --version)');
  const minCoverage = Number(values['min-coverage']);
  if (!(minCoverage >= 0 && minCoverage <= 1)) throw new RangeError(`--min-coverage: expected a number in 0..1, got "${values['min-coverage']}"`);
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0)) throw new RangeError(`--timeout: expected seconds > 0, got "${values.timeout}"`);
  const conn = readHistoryConnection(process.env, { brokers: values.brokers, registry: values.registry, topicDefault: 'features' });
  const topic = values.topic ?? conn.defaultTopic;

  const dir =
    values['model-dir'] !== undefined ? path.resolve(values['model-dir']) : (await resolveVersion(path.resolve(values.model!, '..'), path.basename(path.resolve(values.model!)), values.version)).dir;
  // cpu: the same floating-point results on every run, so two replays print the same scores.
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const loaded = await loadModelDir(dir);
  const meta = loaded.metadata;

  const kafka = historyKafka(conn.brokers, 'pitwall-replay', conn.security);
  const admin = kafka.admin();
  await admin.connect();
  let range;
  try {
    range = await resolveTopicRange(admin, topic, values.from, values.to);
  } finally {
    await admin.disconnect();
  }
  const read = await readTopicRange(kafka, range, { timeoutMs: timeoutS * 1000 });
  const decoder = createReadOnlyDecoder<FeatureRecordLike>(createSchemaStore(conn.registryUrl), await loadSchemaFile(defaultSchemasDir(), 'features', 2));
  const inputs: ReplayInput[] = [];
  const undecodable: Array<{ partition: number; offset: string; reason: string }> = [];
  for (const r of read.records) {
    if (!r.value) {
      undecodable.push({ partition: r.partition, offset: r.offset, reason: 'empty value' });
      continue;
    }
    try {
      inputs.push({ partition: r.partition, offset: r.offset, record: await decoder.decode(r.value) });
    } catch (err) {
      undecodable.push({ partition: r.partition, offset: r.offset, reason: (err as Error).message });
    }
  }
  const outcome = replayAlerts(loaded.model, meta, inputs, { minCoverage });
  loaded.model.dispose();
  const summary = {
    model: { name: meta.name, version: meta.version, threshold: meta.threshold },
    range: describeRead(read),
    scored: outcome.scored,
    partial: outcome.partial,
    otherWindows: outcome.otherWindows,
    stuck: outcome.stuck,
    invalid: [...undecodable, ...outcome.invalid].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset))),
    alerts: outcome.alerts.length,
  };
  if (values.json) {
    for (const a of outcome.alerts) process.stdout.write(alertJsonLine(a) + '\n');
    process.stderr.write(JSON.stringify({ summary }) + '\n');
  } else {
    const parts = summary.range.partitions.map((p) => `${p.partition}:[${p.fromOffset},${p.toOffset})`).join(' ');
    process.stdout.write(
      [
        `replay of ${topic} ${parts} with ${meta.name} v${meta.version} (threshold ${meta.threshold})`,
        `${summary.range.records} records: ${summary.scored} scored, ${summary.partial} below coverage, ${summary.otherWindows} of other window sizes, ` +
          `${summary.invalid.length} invalid; ${summary.alerts} alerts (${summary.stuck} from the stuck-sensor detector)`,
        ...summary.invalid.slice(0, 20).map((i) => `invalid ${i.partition}:${i.offset}: ${i.reason}`),
        ...(summary.invalid.length > 20 ? [`... ${summary.invalid.length - 20} more invalid records (--json lists all in the summary)`] : []),
        ...(outcome.alerts.length ? [formatAlertTable(outcome.alerts)] : []),
      ].join('\n') + '\n',
    );
  }
  return 0;
}

runCliIfMain(import.meta.url, 'replay', main);
