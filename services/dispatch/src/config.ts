import { hostname } from 'node:os';
import { configReader, readCommonConfig, type Env } from '@pitwall/common';

export function readDispatchConfig(env: Env) {
  const c = configReader(env);
  const common = readCommonConfig(c, 'dispatch');
  return c.done({
    ...common,
    healthPort: c.int('HEALTH_PORT', 9104, { min: 0, max: 65535 }),
    partitions: c.int('TOPIC_PARTITIONS', 3, { min: 1, max: 10_000 }),
    groupId: c.str('DISPATCH_GROUP_ID', 'pitwall-dispatch'),
    fleetTopic: c.str('DISPATCH_FLEET_TOPIC', 'fleet/incidents'),
    // MQTT 5 message expiry of an alert: the broker drops it for a car that stayed offline longer.
    alertExpirySeconds: c.int('DISPATCH_ALERT_EXPIRY_S', 86_400, { min: 1, max: 4_294_967_295 }),
    // Shared with the incidents service (same variable, same default next to the incidents topic).
    dlqTopic: c.str('TOPIC_INCIDENTS_DLQ', `${common.topics.incidents}.dlq`),
    mqttClientId: c.str('DISPATCH_CLIENT_ID', `pitwall-dispatch-${hostname()}-${process.pid}`),
  });
}
