/**
 * A console view for fleet operators: follows the operators' MQTT topic and prints each alert as
 * one readable line.   node services/dispatch/dist/src/alerts-cli.js [--topic fleet/alerts] [--json]
 * Env: MQTT_URL, MQTT_USERNAME, MQTT_PASSWORD.
 */
import { parseArgs } from 'node:util';
import { configReader, connectMqtt, createLogger, mqttOptions, readCommonConfig, runMain } from '@pitwall/common';

const COLORS = process.stdout.isTTY ? { red: '\x1b[31m', yellow: '\x1b[33m', dim: '\x1b[2m', bold: '\x1b[1m', off: '\x1b[0m' } : { red: '', yellow: '', dim: '', bold: '', off: '' };

export function formatAlert(a: Record<string, unknown>): string {
  const c = COLORS;
  const score = Number(a.score);
  const threshold = Number(a.threshold);
  const ratio = score / threshold;
  const sev = ratio >= 3 ? `${c.red}${c.bold}HIGH${c.off}` : ratio >= 1.5 ? `${c.yellow}MED ${c.off}` : 'LOW ';
  const at = new Date(Number(a.windowEnd)).toISOString().slice(11, 19);
  const model = a.model as { name: string; version: string };
  return `${c.dim}${at}${c.off} ${sev} ${c.bold}${String(a.vehicleId).padEnd(10)}${c.off} score ${score.toFixed(2).padStart(7)} (x${ratio.toFixed(1)} threshold)  ${a.summary}  ${c.dim}[${model.name}@${model.version}]${c.off}`;
}

runMain('alerts-cli', async () => {
  const { values } = parseArgs({ options: { topic: { type: 'string', default: 'fleet/alerts' }, json: { type: 'boolean', default: false } } });
  const c = configReader(process.env);
  const config = c.done(readCommonConfig(c, 'alerts-cli'));
  const log = createLogger({ service: 'alerts-cli', level: 'warn', write: (l) => process.stderr.write(l + '\n') });
  const client = await connectMqtt(config.mqtt.url, mqttOptions(config, { clientId: `pitwall-alerts-cli-${process.pid}` }), log);
  await client.subscribeAsync(values.topic!, { qos: 1 });
  process.stdout.write(`following ${values.topic} on ${config.mqtt.url} (Ctrl-C to stop)\n`);
  client.on('message', (_topic, payload) => {
    try {
      const alert = JSON.parse(payload.toString()) as Record<string, unknown>;
      process.stdout.write((values.json ? JSON.stringify(alert) : formatAlert(alert)) + '\n');
    } catch {
      process.stdout.write(`(unreadable alert payload: ${payload.length} bytes)\n`);
    }
  });
  const stop = (): void => void client.endAsync().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
