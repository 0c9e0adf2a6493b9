/**
 * Who may do what on Kafka: one SASL/SCRAM identity per service, and the ACLs that identity needs
 * (docs/guarantees.md, Kafka security). The broker denies everything without an ACL
 * (allow.everyone.if.no.acl.found=false), so this table is the whole of a service's rights.
 *
 * Names come from the same variables, with the same defaults, as the services' own configuration
 * (TOPIC_*, *_GROUP_ID, *_TRANSACTIONAL_ID_PREFIX): scripts/infra.sh provisions the defaults (or
 * whatever its environment sets), the end-to-end tests grant each run's own names.
 *   - topics: LITERAL. A PREFIXED `vehicle.telemetry` would also give windowing and the console
 *     `vehicle.telemetry.dlq`, which they must not read.
 *   - consumer groups: PREFIXED with the configured group id: a service also uses groups named
 *     after it (`<group>.floors`, `<group>.rebuild`, `<group>.replay`, `<group>.model-updates-<uuid>`,
 *     the console's `<prefix>-scores-<uuid>`).
 *   - transactional ids: PREFIXED with the configured prefix (one id per input partition).
 */
import type { Admin } from 'kafkajs';
import { configReader, readCommonConfig, type Env } from './config.js';

/** The services that talk to Kafka, each with an identity (SASL user) of the same name. */
export const KAFKA_SERVICE_IDENTITIES = ['ingest', 'windowing', 'scoring', 'incidents', 'dispatch', 'console'] as const;
export type KafkaServiceIdentity = (typeof KAFKA_SERVICE_IDENTITIES)[number];
/** The operators' identity (CLIs, topic administration, tests): a super user of the broker. */
export const KAFKA_ADMIN_IDENTITY = 'admin';

export interface ServiceGrants {
  /** Topics it consumes (READ, DESCRIBE, DESCRIBE_CONFIGS; CREATE: services create what they use). */
  read: string[];
  /** Topics it produces to (WRITE, DESCRIBE, DESCRIBE_CONFIGS, CREATE). */
  write: string[];
  /** Consumer-group prefixes (READ, DESCRIBE, DELETE). */
  groupPrefixes: string[];
  /** Transactional-id prefixes (WRITE, DESCRIBE). */
  transactionalIdPrefixes: string[];
}

/** The grants of one service for the names its configuration gives in `env`. */
export function serviceGrants(service: KafkaServiceIdentity, env: Env): ServiceGrants {
  const c = configReader(env);
  const t = readCommonConfig(c, service).topics;
  const incidentsDlq = c.str('TOPIC_INCIDENTS_DLQ', `${t.incidents}.dlq`);
  let grants: ServiceGrants;
  switch (service) {
    case 'ingest':
      grants = { read: [], write: [t.telemetry, t.receipts, t.telemetryDlq], groupPrefixes: [], transactionalIdPrefixes: [] };
      break;
    case 'windowing': {
      const group = c.str('WINDOWING_GROUP_ID', 'pitwall-windowing');
      const floors = c.str('TOPIC_WINDOWING_FLOORS', `${group}.floors`);
      grants = {
        read: [t.telemetry, floors],
        // telemetry: the idle markers windowing appends to a quiet input partition (services/windowing/src/windowing.ts).
        write: [t.telemetry, t.features, t.telemetryDlq, c.str('TOPIC_TELEMETRY_LATE', 'vehicle.telemetry.late'), floors],
        groupPrefixes: [group],
        transactionalIdPrefixes: [c.str('WINDOWING_TRANSACTIONAL_ID_PREFIX', 'pitwall-windowing')],
      };
      break;
    }
    case 'scoring':
      grants = {
        // SCORING_INPUT=readings: a deployment scoring each reading of vehicle.telemetry.
        read: [c.oneOf('SCORING_INPUT', ['windows', 'readings'], 'windows') === 'readings' ? t.telemetry : t.features, t.modelUpdates],
        write: [t.alerts, t.scores, c.str('TOPIC_FEATURES_DLQ', 'vehicle.features.dlq'), t.shadowReports, t.driftReports],
        groupPrefixes: [c.str('SCORING_GROUP_ID', 'pitwall-scoring')],
        transactionalIdPrefixes: [],
      };
      break;
    case 'incidents':
      grants = {
        read: [t.scores, t.incidentCommands, t.receipts, t.incidents],
        write: [t.incidents, incidentsDlq],
        groupPrefixes: [c.str('INCIDENTS_GROUP_ID', 'pitwall-incidents')],
        transactionalIdPrefixes: [c.str('INCIDENTS_TRANSACTIONAL_ID_PREFIX', 'pitwall-incidents')],
      };
      break;
    case 'dispatch':
      grants = { read: [t.incidents], write: [incidentsDlq], groupPrefixes: [c.str('DISPATCH_GROUP_ID', 'pitwall-dispatch')], transactionalIdPrefixes: [] };
      break;
    case 'console': {
      const sessions = c.str('TOPIC_CONSOLE_SESSIONS', 'console.sessions');
      grants = {
        read: [t.incidents, t.scores, t.telemetry, sessions, t.driftReports],
        write: [t.incidentCommands, sessions, c.str('TOPIC_CONSOLE_AUDIT', 'console.audit')],
        groupPrefixes: [c.str('CONSOLE_GROUP_ID_PREFIX', 'pitwall-console')],
        transactionalIdPrefixes: [],
      };
      break;
    }
  }
  return c.done(grants);
}

// kafkajs's enums (AclResourceTypes, ...) are not ES named exports of its CommonJS build.
const RESOURCE = { TOPIC: 2, GROUP: 3, TRANSACTIONAL_ID: 5 } as const;
const PATTERN = { LITERAL: 3, PREFIXED: 4 } as const;
const OP = { READ: 3, WRITE: 4, CREATE: 5, DELETE: 6, DESCRIBE: 8, DESCRIBE_CONFIGS: 10 } as const;
const ALLOW = 3;

export interface AclBinding {
  resourceType: number;
  resourceName: string;
  resourcePatternType: number;
  principal: string;
  host: string;
  operation: number;
  permissionType: number;
}

/** The ALLOW bindings for `User:<user>` that give exactly `grants`. */
export function aclBindings(user: string, grants: ServiceGrants): AclBinding[] {
  const principal = `User:${user}`;
  const out: AclBinding[] = [];
  const add = (resourceType: number, resourcePatternType: number, names: readonly string[], ops: readonly number[]): void => {
    for (const resourceName of new Set(names)) {
      for (const operation of ops) out.push({ resourceType, resourceName, resourcePatternType, principal, host: '*', operation, permissionType: ALLOW });
    }
  };
  add(RESOURCE.TOPIC, PATTERN.LITERAL, grants.read, [OP.READ, OP.DESCRIBE, OP.DESCRIBE_CONFIGS, OP.CREATE]);
  add(
    RESOURCE.TOPIC,
    PATTERN.LITERAL,
    grants.write.filter((w) => !grants.read.includes(w)),
    [OP.WRITE, OP.DESCRIBE, OP.DESCRIBE_CONFIGS, OP.CREATE],
  );
  add(
    RESOURCE.TOPIC,
    PATTERN.LITERAL,
    grants.write.filter((w) => grants.read.includes(w)),
    [OP.WRITE],
  );
  add(RESOURCE.GROUP, PATTERN.PREFIXED, grants.groupPrefixes, [OP.READ, OP.DESCRIBE, OP.DELETE]);
  add(RESOURCE.TRANSACTIONAL_ID, PATTERN.PREFIXED, grants.transactionalIdPrefixes, [OP.WRITE, OP.DESCRIBE]);
  return out;
}

/** Creates the bindings (creating an existing ACL again is a no-op on the broker). Needs an admin connected as a super user. */
export async function grantAcls(admin: Admin, bindings: readonly AclBinding[]): Promise<void> {
  if (bindings.length === 0) return;
  // kafkajs's createAcls takes its own enum types; the numbers above are their values.
  await admin.createAcls({ acl: bindings as unknown as Parameters<Admin['createAcls']>[0]['acl'] });
}
