/**
 * Where scripts/infra.sh keeps the local brokers' credentials under PITWALL_HOME, for whatever runs
 * beside them as someone (tests, benchmarks, the demo's command lines):
 *   secrets/kafka/<user>.password     a Kafka SCRAM identity's password (admin, one per service)
 *   pki/kafka/ca.pem                  the CA of Kafka's TLS listener
 *   secrets/registry/<user>.password  the schema registry's write identity (admin)
 * The caller says where PITWALL_HOME is: library code never reads the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RegistryCredentials } from './registry.js';

export interface LocalInfraDirs {
  /** secrets/kafka: one <user>.password per Kafka identity. */
  readonly kafkaSecrets: string;
  /** pki/kafka: ca.pem of Kafka's TLS listener. */
  readonly kafkaPki: string;
  /** secrets/registry: admin.password of the schema registry. */
  readonly registrySecrets: string;
}

export function localInfraDirs(home: string): LocalInfraDirs {
  return {
    kafkaSecrets: path.join(home, 'secrets/kafka'),
    kafkaPki: path.join(home, 'pki/kafka'),
    registrySecrets: path.join(home, 'secrets/registry'),
  };
}

/** The environment that makes a service or command line sign in to the local Kafka as `user` (docs/configuration.md). */
export function kafkaIdentityEnv(dirs: Pick<LocalInfraDirs, 'kafkaSecrets' | 'kafkaPki'>, user: string): Record<string, string> {
  return {
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SSL_CA_FILE: path.join(dirs.kafkaPki, 'ca.pem'),
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: user,
    KAFKA_SASL_PASSWORD_FILE: path.join(dirs.kafkaSecrets, `${user}.password`),
  };
}

/** The registry's write identity, as the deploy step uses it (SCHEMA_REGISTRY_USERNAME / _PASSWORD_FILE). */
export function registryAdminEnv(dirs: Pick<LocalInfraDirs, 'registrySecrets'>): Record<string, string> {
  return { SCHEMA_REGISTRY_USERNAME: 'admin', SCHEMA_REGISTRY_PASSWORD_FILE: path.join(dirs.registrySecrets, 'admin.password') };
}

export function registryAdminCredentials(dirs: Pick<LocalInfraDirs, 'registrySecrets'>): RegistryCredentials {
  return { username: 'admin', password: readFileSync(path.join(dirs.registrySecrets, 'admin.password'), 'utf8').trim() };
}

/**
 * The local operator's identities (Kafka admin, registry admin) as environment variables, only
 * those whose password file exists: benchmarks and tools run beside scripts/infra.sh spread it
 * under their own environment (`{ ...localAdminEnv(home), ...process.env }`).
 */
export function localAdminEnv(home: string): Record<string, string> {
  const dirs = localInfraDirs(home);
  return {
    ...(existsSync(path.join(dirs.kafkaSecrets, 'admin.password')) ? kafkaIdentityEnv(dirs, 'admin') : {}),
    ...(existsSync(path.join(dirs.registrySecrets, 'admin.password')) ? registryAdminEnv(dirs) : {}),
  };
}
