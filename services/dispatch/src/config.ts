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
    fleetTopic: c.str('DISPATCH_FLEET_TOPIC', 'fleet/alerts'),
    dlqTopic: c.str('TOPIC_ALERTS_DLQ', 'maintenance.alerts.dlq'),
    mqttClientId: c.str('DISPATCH_CLIENT_ID', `pitwall-dispatch-${hostname()}-${process.pid}`),
  });
}
