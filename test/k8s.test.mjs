/**
 * Offline validation of the Kubernetes manifests in k8s/: no cluster, no brokers.
 *
 * 1. `kubectl kustomize` builds k8s/base and k8s/overlays/dev (kubectl on PATH, or $KUBECTL).
 * 2. Every resulting object is validated against its schema: Kubernetes (kubernetes-models),
 *    KEDA (@kubernetes-models/keda), Prometheus Operator (@kubernetes-models/prometheus-operator),
 *    with a strict pass that rejects fields the schema does not know (what `kubectl apply` does
 *    with --validate=strict). Strimzi's KafkaUser has no published model: its v1beta2 fields used
 *    here are checked by hand (validateKafkaUser).
 * 3. Pitwall's own rules: probes, resources, hardening, ConfigMap references, each service's
 *    effective environment accepted by its own config reader (read<Name>Config from its package),
 *    and the security and operations rules: Secrets referenced are generated or documented in
 *    k8s/README.md with the keys used and never optional; each Kafka service has a KafkaUser whose
 *    ACLs cover the topics, groups and transactional ids its config names; NetworkPolicies allow
 *    exactly the flows of the architecture diagram; ScaledObjects scale on their input's lag
 *    within its partitions; every workload has a PodDisruptionBudget and is scraped.
 *    Run-to-completion Jobs (JOBS: the registry's deploy step) get the same hardening, resource,
 *    reference, Secret and NetworkPolicy rules, none of the long-running pods' (probes, health
 *    port, replicas, PodDisruptionBudget, scraping), and their own: a restartPolicy a Job allows, a
 *    deadline, the command they run, their CLI's config reader accepting their environment.
 *    Each rule is a function returning problems, and a test below breaks a copy to see it fail.
 *
 * YAML is read as YAML 1.1, like the Go YAML library Kubernetes uses: `yes`/`on` are booleans.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BASE = path.join(REPO, 'k8s', 'base');
const DEV = path.join(REPO, 'k8s', 'overlays', 'dev');
const NAMESPACE = 'pitwall';
const PART_OF = 'app.kubernetes.io/part-of';

/**
 * Each service: its workload kind, health port, the variables it must be given (null: any value)
 * and the config reader its package exports. ingest is a StatefulSet: see k8s/base/ingest.yaml.
 */
const SERVICES = {
  ingest: { kind: 'StatefulSet', port: 9101, env: {}, reader: 'readIngestConfig' },
  windowing: { kind: 'Deployment', port: 9102, env: { WINDOW_SIZE_MS: '10000', WINDOW_GRACE_MS: '2000' }, reader: 'readWindowingConfig' },
  scoring: {
    kind: 'Deployment',
    port: 9103,
    env: { MODEL_DIR: '/models', MODEL_NAME: 'pitwall-ae', MODEL_VERSION: 'latest', TFJS_BACKEND: 'wasm' },
    reader: 'readScoringConfig',
  },
  dispatch: { kind: 'Deployment', port: 9104, env: {}, reader: 'readDispatchConfig' },
  incidents: { kind: 'Deployment', port: 9106, env: { INCIDENTS_CLEAR_AFTER_WINDOWS: '6' }, reader: 'readIncidentsConfig' },
  simulator: { kind: 'Deployment', port: 9105, env: { SIM_CARS: null, SIM_RATE_HZ: null, SIM_FAILURES: null }, reader: 'readSimulatorConfig' },
  // The console serves its pages and the probes on one port, CONSOLE_PORT; its sign-in users come
  // from a Secret the base does not ship, so the reader check supplies them (secretEnv).
  console: {
    kind: 'Deployment',
    port: 8080,
    portVar: 'CONSOLE_PORT',
    env: {},
    reader: 'readConsoleConfig',
    service: true,
    // A hash of a random password nobody knows (the console refuses plain passwords).
    secretEnv: { CONSOLE_USERS: 'k8s-test:viewer:scrypt$32768$8$1$a0B9wmFH1t0v7zLLMK_9yA$Moa3JhRpBdWiol6-IvNzXkspMQy3ObY8LwTJ-6yWVJQ' },
  },
};
/** The variable naming the port of a service's probes. */
const portVarOf = (name) => SERVICES[name]?.portVar ?? 'HEALTH_PORT';
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet']);
/** Pods that run to completion: no probes, health port, replicas, PodDisruptionBudget or metrics. */
const JOB_KINDS = new Set(['Job']);
/**
 * Each Job: the command it runs, the variables it must be given (null: any value), `read`: its
 * CLI's own config reading (throws what the CLI would refuse), and `check`: what its parsed config
 * must agree on with the services' parsed configs (problems).
 */
const JOBS = {
  'schemas-deploy': {
    command: ['node', '/app/services/common/dist/src/schemas-cli.js', 'deploy'],
    env: { SCHEMA_REGISTRY_USERNAME: null, SCHEMA_REGISTRY_PASSWORD_FILE: '/etc/pitwall/registry-admin/password' },
    // As schemas-cli.ts: readCommonConfig, then deploy refuses to run without a write identity.
    async read(env) {
      const { configReader, readCommonConfig } = await import('@pitwall/common');
      const c = configReader(env);
      const config = c.done(readCommonConfig(c, 'schemas'));
      if (!config.registryCredentials) throw new Error("SCHEMA_REGISTRY_USERNAME is not set: deploy needs the registry's write identity");
      return config;
    },
    // It registers under the subjects (<topic>-value) every service of the registry looks up.
    async check(config, services) {
      const { TOPIC_RECORDS } = await import('@pitwall/common');
      const problems = [];
      for (const [service, sc] of Object.entries(services)) {
        if (!EXPECTED_EGRESS[service]?.includes('registry')) continue;
        const topics = (sc.common ?? sc).topics;
        for (const key of Object.keys(TOPIC_RECORDS)) {
          if (topics[key] !== config.topics[key]) problems.push(`registers ${config.topics[key]}-value, but ${service} looks up ${topics[key]}-value`);
        }
      }
      return problems;
    },
  },
};
const SHARED_ENV = ['LOG_LEVEL', 'KAFKA_BROKERS', 'KAFKA_CLIENT_ID', 'SCHEMA_REGISTRY_URL', 'MQTT_URL', 'TOPIC_TELEMETRY', 'TOPIC_TELEMETRY_DLQ', 'TOPIC_FEATURES', 'TOPIC_ALERTS', 'HEALTH_PORT'];

// ------------------------------------------------------------------ kustomize (kubectl)

const KUBECTL = process.env.KUBECTL || 'kubectl';

function parseYamlDocs(text, where) {
  const out = [];
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

const idOf = (o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;

/** `kubectl kustomize <dir>`, parsed; fails with a clear message when kubectl is missing. */
function kustomize(dir) {
  const r = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error?.code === 'ENOENT') {
    throw new Error(`${KUBECTL} not found: these tests build the manifests with \`kubectl kustomize\` (kubectl >= 1.27); install kubectl or set KUBECTL`);
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${path.relative(REPO, dir)} failed (exit ${r.status}):\n${r.stderr}`);
  const objects = parseYamlDocs(r.stdout, `kubectl kustomize ${dir}`);
  const seen = new Set();
  for (const o of objects) {
    if (seen.has(idOf(o))) throw new Error(`${idOf(o)} is defined twice`);
    seen.add(idOf(o));
  }
  return objects;
}

// ------------------------------------------------------------------ schema validation

const modelModules = new Map();

/** Where the schema of each API group lives; the Kubernetes API groups are in kubernetes-models. */
const MODEL_PACKAGES = {
  'keda.sh/': '@kubernetes-models/keda/',
  'monitoring.coreos.com/': '@kubernetes-models/prometheus-operator/',
};

async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new Error('apiVersion and kind are required');
  if (!modelModules.has(apiVersion)) {
    // Core resources live in kubernetes-models/v1, the others in <package>/<group>/<version>.
    const pkg = Object.entries(MODEL_PACKAGES).find(([group]) => apiVersion.startsWith(group))?.[1] ?? 'kubernetes-models/';
    modelModules.set(
      apiVersion,
      import(`${pkg}${apiVersion}`).catch(() => null),
    );
  }
  const mod = await modelModules.get(apiVersion);
  const Model = mod?.[kind];
  if (typeof Model !== 'function') throw new Error(`no Kubernetes schema for ${apiVersion} ${kind}`);
  return Model;
}

/**
 * Schema validation, then unknown fields. The compiled validators read every property their schema
 * declares and enumerate only free-form maps (labels, data, resources.limits...), so an own key of
 * a validated object that was never read is a field Kubernetes does not know.
 */
async function validateObject(obj) {
  if (obj?.apiVersion === 'kafka.strimzi.io/v1beta2' && obj.kind === 'KafkaUser') return validateKafkaUser(obj);
  const Model = await modelClass(obj.apiVersion, obj.kind);
  const model = new Model(obj);
  const read = new WeakMap();
  const enumerated = new WeakSet();
  const proxies = new WeakMap();
  const note = (target, key) => {
    if (typeof key !== 'string') return;
    if (!read.has(target)) read.set(target, new Set());
    read.get(target).add(key);
  };
  const wrap = (value) => {
    if (value === null || typeof value !== 'object') return value;
    if (!proxies.has(value)) {
      proxies.set(
        value,
        new Proxy(value, {
          get: (t, k, r) => (note(t, k), wrap(Reflect.get(t, k, r))),
          has: (t, k) => (note(t, k), Reflect.has(t, k)),
          getOwnPropertyDescriptor: (t, k) => (note(t, k), Reflect.getOwnPropertyDescriptor(t, k)),
          ownKeys: (t) => (enumerated.add(t), Reflect.ownKeys(t)),
        }),
      );
    }
    return proxies.get(value);
  };
  model.validate.call(wrap(model));

  const unknown = [];
  const walk = (value, where) => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${where}[${i}]`));
    const keysRead = read.get(value);
    for (const [key, child] of Object.entries(value)) {
      if (keysRead && !enumerated.has(value) && !keysRead.has(key)) unknown.push(`${where}.${key}`);
      walk(child, `${where}.${key}`);
    }
  };
  walk(model, '');
  if (unknown.length) throw new Error(`unknown field(s): ${unknown.map((u) => u.slice(1)).join(', ')}`);
}

// ------------------------------------------------------------------ Strimzi KafkaUser (by hand)

/**
 * The kafka.strimzi.io/v1beta2 KafkaUser fields Pitwall uses, as in Strimzi's CRD schema: there is
 * no published model to validate against. Unknown fields are refused, like the strict pass above.
 */
const STRIMZI_ACL_OPERATIONS = new Set(['Read', 'Write', 'Create', 'Delete', 'Alter', 'Describe', 'ClusterAction', 'AlterConfigs', 'DescribeConfigs', 'IdempotentWrite', 'All']);
const STRIMZI_RESOURCE_TYPES = new Set(['topic', 'group', 'cluster', 'transactionalId']);

function validateKafkaUser(o) {
  const problems = [];
  const only = (value, allowed, where) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return (problems.push(`${where} must be an object`), false);
    for (const k of Object.keys(value)) if (!allowed.includes(k)) problems.push(`unknown field(s): ${where ? `${where}.` : ''}${k}`);
    return true;
  };
  only(o, ['apiVersion', 'kind', 'metadata', 'spec'], '');
  if (typeof o.metadata?.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.metadata.name)) problems.push('metadata.name must be a DNS subdomain');
  if (!o.metadata?.labels?.['strimzi.io/cluster']) problems.push('metadata.labels["strimzi.io/cluster"] is required: it names the Kafka cluster');
  if (only(o.spec, ['authentication', 'authorization', 'quotas', 'template'], 'spec')) {
    const auth = o.spec.authentication;
    if (only(auth, ['type', 'password'], 'spec.authentication') && !['tls', 'tls-external', 'scram-sha-512'].includes(auth.type)) {
      problems.push(`spec.authentication.type must be tls, tls-external or scram-sha-512, got ${auth.type}`);
    }
    const authz = o.spec.authorization;
    if (only(authz, ['type', 'acls'], 'spec.authorization')) {
      if (authz.type !== 'simple') problems.push(`spec.authorization.type must be simple, got ${authz.type}`);
      if (!Array.isArray(authz.acls)) problems.push('spec.authorization.acls must be an array');
      for (const [i, acl] of (authz.acls ?? []).entries()) {
        const at = `spec.authorization.acls[${i}]`;
        if (!only(acl, ['type', 'resource', 'host', 'operations', 'operation'], at)) continue;
        if (acl.type !== undefined && !['allow', 'deny'].includes(acl.type)) problems.push(`${at}.type must be allow or deny`);
        if (only(acl.resource, ['type', 'name', 'patternType'], `${at}.resource`)) {
          const r = acl.resource;
          if (!STRIMZI_RESOURCE_TYPES.has(r.type)) problems.push(`${at}.resource.type must be one of ${[...STRIMZI_RESOURCE_TYPES].join(', ')}, got ${r.type}`);
          if (r.type !== 'cluster' && (typeof r.name !== 'string' || !r.name)) problems.push(`${at}.resource.name is required for ${r.type}`);
          if (r.type === 'cluster' && (r.name !== undefined || r.patternType !== undefined)) problems.push(`${at}.resource: a cluster resource has no name or patternType`);
          if (r.patternType !== undefined && !['literal', 'prefix'].includes(r.patternType)) problems.push(`${at}.resource.patternType must be literal or prefix`);
        }
        const ops = acl.operations ?? (acl.operation === undefined ? undefined : [acl.operation]);
        if (!Array.isArray(ops) || !ops.length) problems.push(`${at}.operations must be a non-empty array`);
        for (const op of ops ?? []) if (!STRIMZI_ACL_OPERATIONS.has(op)) problems.push(`${at}.operations: ${op} is not a Kafka ACL operation`);
      }
    }
  }
  if (problems.length) return Promise.reject(new Error(problems.join('; ')));
  return Promise.resolve();
}

// ------------------------------------------------------------------ Pitwall's rules

const CPU = /^(\d+(?:\.\d+)?)(m?)$/;
const MEMORY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const MEMORY_UNITS = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

function quantity(kind, value) {
  const s = String(value);
  const m = (kind === 'cpu' ? CPU : MEMORY).exec(s);
  if (!m) return NaN;
  if (kind === 'cpu') return Number(m[1]) / (m[2] ? 1000 : 1);
  return Number(m[1]) * (m[2] ? MEMORY_UNITS[m[2]] : 1);
}

/** The environment a container starts with: envFrom in order (later wins), then env. */
function effectiveEnv(container, byId, namespace) {
  const env = {};
  for (const src of container.envFrom ?? []) {
    if (src.configMapRef) {
      const cm = byId.get(`ConfigMap/${namespace}/${src.configMapRef.name}`);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env[(src.prefix ?? '') + k] = v;
    }
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const v = byId.get(`ConfigMap/${namespace}/${ref.name}`)?.data?.[ref.key];
      if (v !== undefined) env[e.name] = v;
    }
  }
  return env;
}

/**
 * Problems of one Deployment, StatefulSet or Job in the context of the whole build; [] when it is
 * fine. A Job is spared what only long-running pods have (probes, health port, replicas) and must
 * instead end: a restartPolicy a Job allows, and a deadline.
 */
function workloadProblems(dep, objects) {
  const problems = [];
  const job = JOB_KINDS.has(dep.kind);
  const byId = new Map(objects.map((o) => [idOf(o), o]));
  const ns = dep.metadata.namespace ?? '';
  const name = dep.metadata.name;
  const pod = dep.spec?.template?.spec ?? {};
  const selector = dep.spec?.selector?.matchLabels ?? {};
  const podLabels = dep.spec?.template?.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(selector)) {
    if (podLabels[k] !== v) problems.push(`selector label ${k}=${v} is not on the pod template`);
  }
  if (dep.kind === 'StatefulSet') {
    // Stable pod DNS names need a headless Service selecting exactly these pods.
    const svc = byId.get(`Service/${ns}/${dep.spec.serviceName}`);
    if (!svc) problems.push(`serviceName ${dep.spec.serviceName} is not a Service in the set`);
    else {
      if (svc.spec?.clusterIP !== 'None') problems.push(`Service ${svc.metadata.name} is not headless`);
      const sel = Object.entries(svc.spec?.selector ?? {});
      if (!sel.length || sel.some(([k, v]) => podLabels[k] !== v)) problems.push(`Service ${svc.metadata.name} does not select the pods`);
    }
  }
  if (pod.securityContext?.runAsNonRoot !== true) problems.push('pod securityContext.runAsNonRoot is not true');
  if (pod.securityContext?.runAsUser === 0) problems.push('pod runs as uid 0');
  if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault') problems.push('pod seccompProfile is not RuntimeDefault');
  if (pod.automountServiceAccountToken !== false) problems.push('pod mounts a service account token (automountServiceAccountToken is not false)');
  if (job) {
    if (!['Never', 'OnFailure'].includes(pod.restartPolicy)) problems.push(`restartPolicy is ${pod.restartPolicy ?? 'not set'}: a Job's pods need Never or OnFailure`);
    if (!(Number.isInteger(dep.spec?.activeDeadlineSeconds) && dep.spec.activeDeadlineSeconds > 0)) problems.push('activeDeadlineSeconds is not set: a hung run would never end');
  }

  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const v of volumes.values()) {
    if (v.persistentVolumeClaim && !byId.has(`PersistentVolumeClaim/${ns}/${v.persistentVolumeClaim.claimName}`)) {
      problems.push(`volume ${v.name}: PersistentVolumeClaim ${v.persistentVolumeClaim.claimName} is not defined`);
    }
    if (v.configMap) {
      const cm = byId.get(`ConfigMap/${ns}/${v.configMap.name}`);
      if (!cm && !v.configMap.optional) problems.push(`volume ${v.name}: ConfigMap ${v.configMap.name} is not defined`);
      for (const item of v.configMap.items ?? []) {
        if (cm && !(item.key in (cm.data ?? {}))) problems.push(`volume ${v.name}: ConfigMap ${v.configMap.name} has no key ${item.key}`);
      }
    }
  }

  const containers = pod.containers ?? [];
  if (!containers.length) problems.push('no containers');
  for (const c of containers) {
    const at = `container ${c.name}`;
    if (!c.image) problems.push(`${at}: no image`);
    else if (!/:[\w][\w.-]*$|@sha256:/.test(c.image) || c.image.endsWith(':latest')) problems.push(`${at}: image ${c.image} has no pinned tag`);

    const envFromCm = (c.envFrom ?? []).filter((s) => s.configMapRef);
    if (!envFromCm.length) problems.push(`${at}: no envFrom ConfigMap`);
    for (const s of envFromCm) {
      if (!byId.has(`ConfigMap/${ns}/${s.configMapRef.name}`) && !s.configMapRef.optional) problems.push(`${at}: envFrom ConfigMap ${s.configMapRef.name} is not defined`);
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.configMapKeyRef;
      if (!ref || ref.optional) continue;
      const cm = byId.get(`ConfigMap/${ns}/${ref.name}`);
      if (!cm) problems.push(`${at}: env ${e.name}: ConfigMap ${ref.name} is not defined`);
      else if (!(ref.key in (cm.data ?? {}))) problems.push(`${at}: env ${e.name}: ConfigMap ${ref.name} has no key ${ref.key}`);
    }

    const env = effectiveEnv(c, byId, ns);
    if (!job) {
      const portVar = portVarOf(c.name);
      const healthPort = Number(env[portVar]);
      const portOf = (p) => (typeof p === 'number' ? p : (c.ports ?? []).find((x) => x.name === p)?.containerPort);
      for (const [probe, wanted] of [
        ['livenessProbe', '/healthz'],
        ['readinessProbe', '/readyz'],
      ]) {
        const get = c[probe]?.httpGet;
        if (!get) problems.push(`${at}: no ${probe} httpGet`);
        else {
          if (get.path !== wanted) problems.push(`${at}: ${probe} path is ${get.path}, expected ${wanted}`);
          if (portOf(get.port) !== healthPort) problems.push(`${at}: ${probe} port ${get.port} is not ${portVar} ${env[portVar]}`);
        }
      }
      if (!(c.ports ?? []).some((p) => p.containerPort === healthPort)) problems.push(`${at}: ${portVar} ${env[portVar]} is not a container port`);
    }

    for (const kind of ['cpu', 'memory']) {
      const req = c.resources?.requests?.[kind];
      const lim = c.resources?.limits?.[kind];
      if (req === undefined) problems.push(`${at}: no ${kind} request`);
      if (lim === undefined) problems.push(`${at}: no ${kind} limit`);
      if (req !== undefined && lim !== undefined && !(quantity(kind, req) <= quantity(kind, lim))) problems.push(`${at}: ${kind} request ${req} exceeds limit ${lim}`);
    }
    const heap = /--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? '');
    const memLimit = quantity('memory', c.resources?.limits?.memory ?? '');
    if (heap && !(Number(heap[1]) * 2 ** 20 <= 0.8 * memLimit)) problems.push(`${at}: --max-old-space-size=${heap[1]} leaves under 20% of the memory limit`);

    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: capabilities do not drop ALL`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: root filesystem is writable`);
    if (sc.runAsUser === 0 || sc.runAsNonRoot === false) problems.push(`${at}: runs as root`);
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.has(m.name)) problems.push(`${at}: volumeMount ${m.name} has no volume`);
    }
  }
  if (!job && !Number.isInteger(dep.spec?.replicas)) problems.push(`replicas is not set`);
  if (problems.length) return problems.map((p) => `${name}: ${p}`);
  return [];
}

/** The first container's effective environment, by name, of the given Deployments/StatefulSets/Jobs. */
function envByName(objects, owners) {
  const byId = new Map(objects.map((o) => [idOf(o), o]));
  return Object.fromEntries(owners.map((d) => [d.metadata.name, effectiveEnv(d.spec.template.spec.containers[0], byId, d.metadata.namespace)]));
}
/** The services' environments, by workload name. */
const envByService = (objects) => envByName(objects, workloads(objects));
/** The Jobs' environments, by Job name. */
const envByJob = (objects) => envByName(objects, jobs(objects));

/** The long-running services (Deployments, StatefulSets). */
const workloads = (objects) => objects.filter((o) => WORKLOAD_KINDS.has(o.kind));
const jobs = (objects) => objects.filter((o) => JOB_KINDS.has(o.kind));
/** Everything that runs pods: the services and the Jobs. */
const podOwners = (objects) => objects.filter((o) => WORKLOAD_KINDS.has(o.kind) || JOB_KINDS.has(o.kind));
const byName = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);

/** Built on first use, inside a test: a build error fails the tests, not the file's loading. */
const once = (fn) => {
  let result;
  return () => (result ??= { value: fn() }).value;
};
const buildBase = once(() => kustomize(BASE));
const buildDev = once(() => kustomize(DEV));

// ------------------------------------------------------------------ security and operations rules

const README = path.join(REPO, 'k8s', 'README.md');

/**
 * The Secrets an operator creates, from the table in k8s/README.md ("Secrets to create"): rows
 * `| \`name\` | \`key\`, \`key\` | ... |`. Name → set of keys.
 */
function documentedSecrets(text = fs.readFileSync(README, 'utf8')) {
  const out = new Map();
  for (const m of text.matchAll(/^\|\s*`([a-z0-9.-]+)`\s*\|([^|]*)\|/gm)) {
    const keys = [...m[2].matchAll(/`([^`]+)`/g)].map((k) => k[1]);
    if (keys.length) out.set(m[1], new Set(keys));
  }
  return out;
}

/** Keys of the Secret Strimzi's User Operator writes for a SCRAM-SHA-512 KafkaUser (named after it). */
const KAFKA_USER_SECRET_KEYS = ['password', 'sasl.jaas.config'];

/** Every Secret a workload or a TriggerAuthentication refers to: [{from, name, keys, optional}]. */
function secretRefs(o) {
  const refs = [];
  const at = `${o.kind} ${o.metadata.name}`;
  if (WORKLOAD_KINDS.has(o.kind) || JOB_KINDS.has(o.kind)) {
    const pod = o.spec.template.spec;
    for (const v of pod.volumes ?? []) {
      if (v.secret) refs.push({ from: `${at} volume ${v.name}`, name: v.secret.secretName, keys: (v.secret.items ?? []).map((i) => i.key), optional: v.secret.optional, allKeys: !v.secret.items });
      for (const src of v.projected?.sources ?? []) {
        if (src.secret)
          refs.push({ from: `${at} volume ${v.name}`, name: src.secret.name, keys: (src.secret.items ?? []).map((i) => i.key), optional: src.secret.optional, allKeys: !src.secret.items });
      }
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const e of c.envFrom ?? []) if (e.secretRef) refs.push({ from: `${at} container ${c.name} envFrom`, name: e.secretRef.name, keys: [], optional: e.secretRef.optional, allKeys: true });
      for (const e of c.env ?? []) {
        const r = e.valueFrom?.secretKeyRef;
        if (r) refs.push({ from: `${at} container ${c.name} env ${e.name}`, name: r.name, keys: [r.key], optional: r.optional });
      }
    }
    for (const s of pod.imagePullSecrets ?? []) refs.push({ from: `${at} imagePullSecrets`, name: s.name, keys: [], optional: false });
  }
  if (o.kind === 'TriggerAuthentication') {
    for (const r of o.spec?.secretTargetRef ?? []) refs.push({ from: `${at} ${r.parameter}`, name: r.name, keys: [r.key], optional: false });
  }
  return refs;
}

/**
 * Every referenced Secret is generated in the build (a Secret object, or the Secret Strimzi writes
 * for a KafkaUser) or documented in k8s/README.md, with the keys used; none is optional: a
 * credential that may be missing is a pod that silently runs without it.
 */
function secretProblems(objects, documented = documentedSecrets()) {
  const problems = [];
  const known = new Map(documented);
  for (const o of objects) {
    if (o.kind === 'Secret') known.set(o.metadata.name, new Set(Object.keys({ ...o.data, ...o.stringData })));
    if (o.kind === 'KafkaUser') known.set(o.metadata.name, new Set(KAFKA_USER_SECRET_KEYS));
  }
  for (const o of objects) {
    for (const ref of secretRefs(o)) {
      if (ref.optional) problems.push(`${ref.from}: Secret ${ref.name} is optional`);
      const keys = known.get(ref.name);
      if (!keys) {
        problems.push(`${ref.from}: Secret ${ref.name} is neither generated nor documented in k8s/README.md`);
        continue;
      }
      for (const k of ref.keys) if (!keys.has(k)) problems.push(`${ref.from}: Secret ${ref.name} has no documented key ${k}`);
    }
  }
  return problems;
}

/** Each *_FILE variable names a file of a mounted Secret volume (the key it maps to must exist: see secretProblems). */
function fileEnvProblems(objects) {
  const problems = [];
  const byId = new Map(objects.map((o) => [idOf(o), o]));
  for (const w of podOwners(objects)) {
    const pod = w.spec.template.spec;
    for (const c of pod.containers) {
      const env = effectiveEnv(c, byId, w.metadata.namespace);
      const files = new Map();
      for (const m of c.volumeMounts ?? []) {
        const v = (pod.volumes ?? []).find((x) => x.name === m.name);
        if (!v?.secret) continue;
        for (const item of v.secret.items ?? []) files.set(path.posix.join(m.mountPath, item.path), `${v.secret.secretName}:${item.key}`);
      }
      for (const [k, value] of Object.entries(env)) {
        if (k.endsWith('_FILE') && !files.has(value)) problems.push(`${w.metadata.name}: ${k}=${value} is not a file of a mounted Secret`);
      }
    }
  }
  return problems;
}

/** What each service does in Kafka, from its own parsed config (the names the code will use). */
const KAFKA_ACCESS = {
  ingest: (c) => ({ read: [], write: [c.topics.telemetry, c.topics.receipts, c.topics.telemetryDlq], groups: [], txn: [] }),
  windowing: (c) => ({
    read: [c.topics.telemetry, c.floorsTopic],
    write: [c.topics.features, c.topics.telemetryDlq, c.lateTopic, c.floorsTopic],
    // The group, and the throw-away readers of the floors changelog (`${group}.floors.<uuid>`).
    groups: [c.groupId, `${c.groupId}.floors.0f0e`],
    // One transactional id per input partition: `${prefix}-${topic}-${partition}`.
    txn: [`${c.transactionalIdPrefix}-${c.topics.telemetry}-0`, `${c.transactionalIdPrefix}-${c.topics.telemetry}-5`],
  }),
  scoring: (c) => ({
    read: [c.topics.features, c.topics.modelUpdates],
    write: [c.topics.alerts, c.topics.scores, c.featuresDlqTopic, c.topics.shadowReports],
    groups: [c.groupId, `${c.groupId}.model-updates.scoring-0.1.0f0e`],
    txn: [],
  }),
  incidents: (c) => ({
    read: [c.topics.scores, c.topics.incidentCommands, c.topics.receipts, c.topics.incidents],
    write: [c.topics.incidents, c.dlqTopic],
    groups: [c.groupId, `${c.groupId}.replay.0f0e`],
    txn: [`${c.transactionalIdPrefix}-p0`, `${c.transactionalIdPrefix}-p5`],
  }),
  dispatch: (c) => ({ read: [c.topics.incidents], write: [c.dlqTopic], groups: [c.groupId, `${c.groupId}.rebuild.0f0e`], txn: [] }),
  console: (c) => ({
    read: [c.topics.incidents, c.topics.scores, c.topics.telemetry, c.consoleTopics.sessions],
    write: [c.topics.incidentCommands, c.consoleTopics.sessions, c.consoleTopics.audit],
    groups: ['scores', 'telemetry', 'sessions', 'incidents'].map((g) => `${c.groupIdPrefix}-${g}-0f0e`),
    txn: [],
  }),
};

/** The input topic whose lag each consumer scales on, from its config. */
const LAG_TOPIC = {
  windowing: (c) => c.topics.telemetry,
  scoring: (c) => c.topics.features,
  incidents: (c) => c.topics.scores,
  dispatch: (c) => c.topics.incidents,
};

async function serviceConfigs(objects) {
  const out = {};
  for (const [name, env] of Object.entries(envByService(objects))) {
    const pkg = await import(`@pitwall/${name}`);
    out[name] = pkg[SERVICES[name].reader](withPlaceholderFiles({ ...env, ...SERVICES[name].secretEnv }));
  }
  return out;
}

function aclAllows(user, type, name, operation) {
  return (user.spec?.authorization?.acls ?? []).some((acl) => {
    if ((acl.type ?? 'allow') !== 'allow' || acl.resource?.type !== type) return false;
    const ops = acl.operations ?? [acl.operation];
    if (!ops.includes(operation) && !ops.includes('All')) return false;
    if (type === 'cluster') return true;
    const r = acl.resource;
    if (r.name === '*') return true;
    return (r.patternType ?? 'literal') === 'prefix' ? name.startsWith(r.name) : name === r.name;
  });
}

/**
 * Every service that talks to Kafka authenticates with SASL_SSL/SCRAM-SHA-512 as a KafkaUser of the
 * build, and that user's ACLs allow what its config says it does: read (and create) its inputs,
 * write (and create) its outputs, join its consumer groups, use its transactional ids.
 */
async function kafkaAclProblems(objects) {
  const problems = [];
  const env = envByService(objects);
  const configs = await serviceConfigs(objects);
  const users = new Map(objects.filter((o) => o.kind === 'KafkaUser').map((u) => [u.metadata.name, u]));
  for (const [name, access] of Object.entries(KAFKA_ACCESS)) {
    const e = env[name];
    if (!e) continue;
    if (e.KAFKA_SECURITY_PROTOCOL !== 'SASL_SSL') problems.push(`${name}: KAFKA_SECURITY_PROTOCOL is ${e.KAFKA_SECURITY_PROTOCOL}, not SASL_SSL`);
    if (e.KAFKA_SASL_MECHANISM !== 'scram-sha-512') problems.push(`${name}: KAFKA_SASL_MECHANISM is ${e.KAFKA_SASL_MECHANISM}, not scram-sha-512`);
    for (const k of ['KAFKA_SSL_CA_FILE', 'KAFKA_SASL_USERNAME']) if (!e[k]) problems.push(`${name}: ${k} is not set`);
    if (!e.KAFKA_SASL_PASSWORD_FILE && !e.KAFKA_SASL_PASSWORD) problems.push(`${name}: neither KAFKA_SASL_PASSWORD_FILE nor KAFKA_SASL_PASSWORD is set`);
    const user = users.get(e.KAFKA_SASL_USERNAME);
    if (!user) {
      problems.push(`${name}: no KafkaUser ${e.KAFKA_SASL_USERNAME}`);
      continue;
    }
    if (user.spec?.authentication?.type !== 'scram-sha-512') problems.push(`${name}: KafkaUser ${user.metadata.name} does not use scram-sha-512`);
    const a = access(configs[name]);
    const need = (type, res, ops) => {
      for (const op of ops) if (!aclAllows(user, type, res, op)) problems.push(`${name}: KafkaUser ${user.metadata.name} may not ${op} ${type} ${res}`);
    };
    for (const t of a.read) need('topic', t, ['Read', 'Describe', 'Create']);
    for (const t of a.write) need('topic', t, ['Write', 'Describe', 'Create']);
    for (const g of a.groups) need('group', g, ['Read', 'Describe']);
    for (const t of a.txn) need('transactionalId', t, ['Write', 'Describe']);
    if (a.write.length) need('cluster', 'kafka-cluster', ['IdempotentWrite']);
  }
  return problems;
}

// A small NetworkPolicy evaluator: which peers a pod may reach and be reached by.

function selects(selector, labels) {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    if (operator === 'In' && !(has && values.includes(labels[key]))) return false;
    if (operator === 'NotIn' && has && values.includes(labels[key])) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** A pod somewhere: { namespace, labels, ports: {name: number} }. */
const nsLabels = (ns) => ({ 'kubernetes.io/metadata.name': ns });

function peerMatches(peer, policyNs, pod) {
  if (peer.ipBlock) return false; // not used: addresses of pods are not stable
  const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, nsLabels(pod.namespace)) : pod.namespace === policyNs;
  const podOk = peer.podSelector ? selects(peer.podSelector, pod.labels) : true;
  return nsOk && podOk;
}

function portMatches(ports, port, protocol, target) {
  if (!ports?.length) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    const n = typeof p.port === 'number' ? p.port : target.ports?.[p.port];
    return n !== undefined && (p.endPort ? port >= n && port <= p.endPort : port === n);
  });
}

/** May `from` open a connection to `to` on port/protocol, under the policies of both namespaces? */
function allowed(policies, from, to, port, protocol = 'TCP') {
  const side = (pod, type, rulesOf, peersOf, other, target) => {
    const applying = policies.filter((p) => p.metadata.namespace === pod.namespace && selects(p.spec.podSelector, pod.labels) && (p.spec.policyTypes ?? ['Ingress']).includes(type));
    if (!applying.length) return true; // not isolated in this direction
    return applying.some((p) =>
      (rulesOf(p) ?? []).some((r) => (peersOf(r) === undefined || peersOf(r).some((peer) => peerMatches(peer, p.metadata.namespace, other))) && portMatches(r.ports, port, protocol, target)),
    );
  };
  return (
    side(
      from,
      'Egress',
      (p) => p.spec.egress,
      (r) => r.to,
      to,
      to,
    ) &&
    side(
      to,
      'Ingress',
      (p) => p.spec.ingress,
      (r) => r.from,
      from,
      to,
    )
  );
}

/** Infrastructure pods, as documented in network-policies.yaml; namespaces and ports come from the services' addresses. */
const INFRA_LABELS = {
  kafka: { 'strimzi.io/cluster': 'pitwall-kafka', 'strimzi.io/kind': 'Kafka', 'strimzi.io/name': 'pitwall-kafka-kafka' },
  mqtt: { 'app.kubernetes.io/name': 'mosquitto' },
  registry: { 'app.kubernetes.io/name': 'apicurio-registry' },
};
/** The flows of the architecture diagram (README.md), per workload; DNS for all. */
const EXPECTED_EGRESS = {
  ingest: ['mqtt', 'kafka', 'registry'],
  windowing: ['kafka', 'registry'],
  scoring: ['kafka', 'registry'],
  incidents: ['kafka', 'registry'],
  dispatch: ['kafka', 'registry', 'mqtt'],
  console: ['kafka', 'registry'],
  simulator: ['mqtt'],
  // The registry's deploy step (a Job): its only writer.
  'schemas-deploy': ['registry'],
};

/** "host.namespace.svc[.cluster.local]:port" → { namespace, port }. */
function serviceAddress(hostPort, defaultPort) {
  const m = /^([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?(?::(\d+))?$/.exec(hostPort);
  if (!m) throw new Error(`not a Service address: ${hostPort}`);
  return { namespace: m[2] ?? NAMESPACE, port: Number(m[3] ?? defaultPort) };
}

function networkPolicyProblems(objects) {
  const problems = [];
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const ns = NAMESPACE;
  const deny = policies.find(
    (p) =>
      p.metadata.namespace === ns &&
      Object.keys(p.spec.podSelector ?? {}).length === 0 &&
      ['Ingress', 'Egress'].every((t) => p.spec.policyTypes?.includes(t)) &&
      !p.spec.ingress?.length &&
      !p.spec.egress?.length,
  );
  if (!deny) problems.push(`no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules) in ${ns}`);

  const env = envByService(objects);
  const ref = env.ingest ?? Object.values(env)[0];
  const kafkaAddrs = ref.KAFKA_BROKERS.split(',').map((b) => serviceAddress(b.trim(), 9092));
  const mqtt = new URL(ref.MQTT_URL);
  const registry = new URL(ref.SCHEMA_REGISTRY_URL);
  const infra = {
    kafka: { namespace: kafkaAddrs[0].namespace, labels: INFRA_LABELS.kafka, port: kafkaAddrs[0].port },
    mqtt: { namespace: serviceAddress(mqtt.hostname, 0).namespace, labels: INFRA_LABELS.mqtt, port: Number(mqtt.port || (mqtt.protocol === 'mqtts:' ? 8883 : 1883)) },
    registry: { namespace: serviceAddress(registry.hostname, 0).namespace, labels: INFRA_LABELS.registry, port: Number(registry.port || (registry.protocol === 'https:' ? 443 : 80)) },
  };
  const dns = { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } };
  const prometheus = { namespace: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } };
  const ingressController = { namespace: 'ingress-nginx', labels: { 'app.kubernetes.io/name': 'ingress-nginx' } };
  const stranger = { namespace: 'default', labels: { app: 'curious' } };
  const neighbour = { namespace: ns, labels: { 'app.kubernetes.io/part-of': 'pitwall', 'app.kubernetes.io/name': 'neighbour' } };

  const podEnv = envByName(objects, podOwners(objects));
  const pods = podOwners(objects).map((w) => {
    const c = w.spec.template.spec.containers[0];
    const ports = Object.fromEntries((c.ports ?? []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
    return { name: w.metadata.name, namespace: w.metadata.namespace, labels: w.spec.template.metadata.labels, ports, env: podEnv[w.metadata.name], job: JOB_KINDS.has(w.kind) };
  });
  for (const pod of pods) {
    const expected = new Set(EXPECTED_EGRESS[pod.name] ?? []);
    for (const [what, target] of Object.entries(infra)) {
      const ok = allowed(policies, pod, target, target.port);
      if (ok && !expected.has(what)) problems.push(`${pod.name} may reach ${what} (${target.namespace}:${target.port}), not in the diagram`);
      if (!ok && expected.has(what)) problems.push(`${pod.name} may not reach ${what} (${target.namespace}:${target.port})`);
    }
    for (const proto of ['UDP', 'TCP']) if (!allowed(policies, pod, dns, 53, proto)) problems.push(`${pod.name} may not reach DNS over ${proto}`);
    if (allowed(policies, pod, stranger, 443)) problems.push(`${pod.name} may reach any pod (default:443)`);
    for (const [n, other] of Object.entries(infra)) {
      if (allowed(policies, pod, { ...other, labels: { app: 'impostor' } }, other.port)) problems.push(`${pod.name} may reach any pod in namespace ${other.namespace} (${n}'s)`);
    }
    if (pod.job) {
      // A Job serves nothing: nobody may connect to it (its ports, if any, and one it does not
      // have: a rule without ports would allow them all).
      for (const [who, from] of [
        ['Prometheus', prometheus],
        ['the ingress controller', ingressController],
        ['a pod of the namespace', neighbour],
        ['a pod of namespace default', stranger],
      ]) {
        for (const port of new Set([...Object.values(pod.ports), 8080])) if (allowed(policies, from, pod, port)) problems.push(`${who} may reach ${pod.name} on ${port}`);
      }
      continue;
    }
    // Ingress: Prometheus on the metrics port; the ingress controller on the console's http port; nobody else.
    const metricsPort = Number(pod.env[portVarOf(pod.name)]);
    if (!allowed(policies, prometheus, pod, metricsPort)) problems.push(`Prometheus may not scrape ${pod.name} on ${metricsPort}`);
    const wantsIngress = pod.name === 'console';
    if (allowed(policies, ingressController, pod, metricsPort) !== wantsIngress) problems.push(`the ingress controller ${wantsIngress ? 'may not' : 'may'} reach ${pod.name} on ${metricsPort}`);
    for (const [who, from] of [
      ['a pod of the namespace', neighbour],
      ['a pod of namespace default', stranger],
    ]) {
      for (const port of new Set([metricsPort, ...Object.values(pod.ports)])) {
        if (allowed(policies, from, pod, port)) problems.push(`${who} may reach ${pod.name} on ${port}`);
      }
    }
  }
  return problems;
}

/**
 * Autoscaling: each Kafka consumer Deployment has a KEDA ScaledObject on its own group's lag of its
 * input topic, authenticated with its own KafkaUser, within the partitions of that topic; ingest
 * has a CPU HorizontalPodAutoscaler. All services create topics with the same TOPIC_PARTITIONS.
 */
async function scalingProblems(objects) {
  const problems = [];
  const env = envByService(objects);
  const configs = await serviceConfigs(objects);
  const parts = new Set(
    Object.values(configs)
      .map((c) => c.partitions)
      .filter((p) => p !== undefined),
  );
  if (parts.size !== 1) problems.push(`services create topics with different partition counts: ${[...parts].sort((a, b) => a - b).join(', ')} (TOPIC_PARTITIONS)`);
  const partitions = Math.min(...parts);
  const scaled = objects.filter((o) => o.kind === 'ScaledObject');
  for (const [name, topicOf] of Object.entries(LAG_TOPIC)) {
    const so = scaled.find((s) => s.spec?.scaleTargetRef?.name === name && (s.spec.scaleTargetRef.kind ?? 'Deployment') === 'Deployment');
    const at = `${name}`;
    if (!so) {
      problems.push(`${at}: no ScaledObject`);
      continue;
    }
    const { minReplicaCount = 0, maxReplicaCount = 100 } = so.spec;
    if (maxReplicaCount > partitions) problems.push(`${at}: maxReplicaCount ${maxReplicaCount} exceeds the ${partitions} partitions of ${topicOf(configs[name])}`);
    if (minReplicaCount > maxReplicaCount) problems.push(`${at}: minReplicaCount ${minReplicaCount} > maxReplicaCount ${maxReplicaCount}`);
    const dep = byName(objects, 'Deployment', name);
    if (dep && dep.spec.replicas > maxReplicaCount) problems.push(`${at}: ${dep.spec.replicas} replicas in the Deployment exceed maxReplicaCount ${maxReplicaCount}`);
    const triggers = so.spec.triggers ?? [];
    const kafka = triggers.find((t) => t.type === 'kafka');
    if (!kafka) {
      problems.push(`${at}: no kafka trigger`);
      continue;
    }
    const m = kafka.metadata ?? {};
    if (!(Number(m.lagThreshold) > 0)) problems.push(`${at}: lagThreshold is not a positive number`);
    if (m.bootstrapServers !== env[name].KAFKA_BROKERS) problems.push(`${at}: bootstrapServers ${m.bootstrapServers} is not KAFKA_BROKERS ${env[name].KAFKA_BROKERS}`);
    if (m.consumerGroup !== configs[name].groupId) problems.push(`${at}: consumerGroup ${m.consumerGroup} is not the service's group ${configs[name].groupId}`);
    if (m.topic !== topicOf(configs[name])) problems.push(`${at}: topic ${m.topic} is not its input ${topicOf(configs[name])}`);
    if (m.sasl !== 'scram_sha512' || m.tls !== 'enable') problems.push(`${at}: the trigger does not use SASL scram_sha512 over TLS`);
    const auth = byName(objects, 'TriggerAuthentication', kafka.authenticationRef?.name);
    if (!auth) {
      problems.push(`${at}: TriggerAuthentication ${kafka.authenticationRef?.name} is not defined`);
      continue;
    }
    const param = (p) => auth.spec?.secretTargetRef?.find((r) => r.parameter === p);
    const user = auth.spec?.env?.find((r) => r.parameter === 'username');
    if (user?.name !== 'KAFKA_SASL_USERNAME' || user?.containerName !== name) problems.push(`${at}: username is not the container's KAFKA_SASL_USERNAME`);
    const pw = param('password');
    if (pw?.name !== env[name].KAFKA_SASL_USERNAME || pw?.key !== 'password') problems.push(`${at}: password is not key "password" of the KafkaUser Secret ${env[name].KAFKA_SASL_USERNAME}`);
    if (!param('ca')) problems.push(`${at}: no ca for the TLS connection`);
  }
  const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef?.kind === 'StatefulSet' && o.spec.scaleTargetRef.name === 'ingest');
  if (!hpa) problems.push('ingest: no HorizontalPodAutoscaler');
  else if (!hpa.spec.metrics?.some((mt) => mt.type === 'Resource' && mt.resource?.name === 'cpu')) problems.push('ingest: the HorizontalPodAutoscaler does not scale on CPU');
  return problems;
}

/** Every workload has a PodDisruptionBudget and is scraped through a Service selected by a ServiceMonitor. */
function availabilityProblems(objects) {
  const problems = [];
  const env = envByService(objects);
  for (const w of workloads(objects)) {
    const name = w.metadata.name;
    const ns = w.metadata.namespace;
    const labels = w.spec.template.metadata.labels;
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget' && o.metadata.namespace === ns && selects(o.spec.selector, labels));
    if (!pdbs.length) problems.push(`${name}: no PodDisruptionBudget`);
    for (const p of pdbs) if (p.spec.minAvailable === undefined && p.spec.maxUnavailable === undefined) problems.push(`${name}: PodDisruptionBudget ${p.metadata.name} limits nothing`);

    const c = w.spec.template.spec.containers[0];
    const metricsPort = Number(env[name][portVarOf(name)]);
    const scraped = objects.some((sm) => {
      if (sm.kind !== 'ServiceMonitor') return false;
      const nsOk = sm.spec.namespaceSelector?.any || (sm.spec.namespaceSelector?.matchNames ?? [sm.metadata.namespace]).includes(ns);
      return (
        nsOk &&
        objects.some((svc) => {
          if (svc.kind !== 'Service' || svc.metadata.namespace !== ns || !selects(sm.spec.selector, svc.metadata.labels ?? {})) return false;
          const sel = Object.entries(svc.spec.selector ?? {});
          if (!sel.length || sel.some(([k, v]) => labels[k] !== v)) return false;
          return (sm.spec.endpoints ?? []).some((ep) => {
            if ((ep.path ?? '/metrics') !== '/metrics') return false;
            const sp = (svc.spec.ports ?? []).find((p) => p.name === ep.port);
            if (!sp) return false;
            const target = sp.targetPort ?? sp.port;
            const n = typeof target === 'number' ? target : (c.ports ?? []).find((p) => p.name === target)?.containerPort;
            return n === metricsPort;
          });
        })
      );
    });
    if (!scraped) problems.push(`${name}: no ServiceMonitor scrapes /metrics on its port ${metricsPort}`);
  }
  return problems;
}

/**
 * Each Job of JOBS is in the build and runs its command with the variables it needs, which its
 * CLI's config reader accepts; its parsed config agrees with the services' (checks of JOBS).
 */
async function jobProblems(objects) {
  const problems = [];
  const env = envByJob(objects);
  const services = await serviceConfigs(objects);
  for (const [name, spec] of Object.entries(JOBS)) {
    const job = byName(objects, 'Job', name);
    if (!job) {
      problems.push(`${name}: no Job`);
      continue;
    }
    const c = job.spec.template.spec.containers[0];
    const command = [...(c.command ?? []), ...(c.args ?? [])];
    if (command.join(' ') !== spec.command.join(' ')) problems.push(`${name}: runs \`${command.join(' ')}\`, expected \`${spec.command.join(' ')}\``);
    for (const [k, v] of Object.entries(spec.env)) {
      if (!(k in env[name])) problems.push(`${name}: ${k} is not set`);
      else if (v !== null && env[name][k] !== v) problems.push(`${name}: ${k} is ${env[name][k]}, expected ${v}`);
    }
    let config;
    try {
      config = await spec.read(withPlaceholderFiles(env[name]));
    } catch (err) {
      problems.push(`${name}: ${err.message}`);
      continue;
    }
    for (const p of await spec.check(config, services)) problems.push(`${name}: ${p}`);
  }
  for (const job of jobs(objects)) if (!JOBS[job.metadata.name]) problems.push(`Job ${job.metadata.name} is not in JOBS: say what it runs and how its config is read`);
  return problems;
}

// ------------------------------------------------------------------ tests: the base

test('base: builds the expected objects', () => {
  const base = buildBase();
  const ids = base.map(idOf).sort();
  const ns = (kind, ...names) => names.map((n) => `${kind}/${NAMESPACE}/${n}`);
  const all = Object.keys(SERVICES);
  const kafka = Object.keys(KAFKA_ACCESS);
  const consumers = Object.keys(LAG_TOPIC);
  const expected = [
    `Namespace//${NAMESPACE}`,
    ...ns('PersistentVolumeClaim', 'pitwall-models'),
    ...ns('ConfigMap', 'pitwall-config', ...all.map((s) => `${s}-config`), ...Object.keys(JOBS).map((j) => `${j}-config`)),
    ...Object.entries(SERVICES).map(([s, { kind }]) => `${kind}/${NAMESPACE}/${s}`),
    ...ns('Job', ...Object.keys(JOBS)),
    // One Service per workload: headless for scraping (ingest's is also its StatefulSet's), console's for the Ingress.
    ...ns('Service', ...all),
    ...ns('NetworkPolicy', 'default-deny', 'allow-dns', 'allow-prometheus-scrape', 'console-ingress', ...[...all, ...Object.keys(JOBS)].map((s) => `${s}-egress`)),
    ...ns('KafkaUser', ...kafka.map((s) => `pitwall-${s}`)),
    ...ns('ScaledObject', ...consumers),
    ...ns('TriggerAuthentication', ...consumers.map((s) => `${s}-kafka`)),
    ...ns('HorizontalPodAutoscaler', 'ingest'),
    ...ns('PodDisruptionBudget', ...all),
    ...ns('ServiceMonitor', 'pitwall'),
  ].sort();
  assert.deepEqual(ids, expected);
  assert.deepEqual(base.filter((o) => o.kind === 'Secret').map(idOf), [], 'no Secret is generated: credentials never live in the repository');
});

test('base: every object passes the Kubernetes schema, strictly', async () => {
  const base = buildBase();
  for (const o of base) {
    await assert.doesNotReject(validateObject(o), `${idOf(o)} is invalid`);
  }
});

test('base: namespace and commonLabels are applied everywhere', () => {
  const base = buildBase();
  for (const o of base) {
    assert.equal(o.metadata.labels?.[PART_OF], 'pitwall', `${idOf(o)} label`);
    if (o.kind === 'Namespace') assert.equal(o.metadata.name, NAMESPACE);
    else assert.equal(o.metadata.namespace, NAMESPACE, `${idOf(o)} namespace`);
  }
  for (const d of workloads(base)) {
    assert.equal(d.spec.selector.matchLabels[PART_OF], 'pitwall');
    assert.equal(d.spec.template.metadata.labels[PART_OF], 'pitwall');
  }
  // A Job's selector is generated by Kubernetes from its pod labels: none in the manifest.
  for (const j of jobs(base)) {
    assert.equal(j.spec.selector, undefined, `${j.metadata.name}: no selector`);
    assert.equal(j.spec.template.metadata.labels[PART_OF], 'pitwall');
  }
});

test('base: every workload has probes, resources, hardening and resolvable references (Jobs: all but probes)', () => {
  const base = buildBase();
  const problems = podOwners(base).flatMap((d) => workloadProblems(d, base));
  assert.deepEqual(problems, []);
});

test('base: every ConfigMap is used by a workload or a Job', () => {
  const base = buildBase();
  const used = new Set(podOwners(base).flatMap((d) => d.spec.template.spec.containers.flatMap((c) => (c.envFrom ?? []).map((s) => s.configMapRef?.name))));
  const unused = base.filter((o) => o.kind === 'ConfigMap' && !used.has(o.metadata.name)).map(idOf);
  assert.deepEqual(unused, []);
});

test('base: each service gets its health port and the variables it reads', () => {
  const base = buildBase();
  const env = envByService(base);
  assert.deepEqual(Object.keys(env).sort(), Object.keys(SERVICES).sort());
  for (const [name, spec] of Object.entries(SERVICES)) {
    const wanted = [...SHARED_ENV.filter((k) => k !== 'HEALTH_PORT'), portVarOf(name), ...Object.keys(spec.env)];
    const missing = wanted.filter((k) => !(k in env[name]));
    assert.deepEqual(missing, [], `${name} lacks variables`);
    assert.equal(env[name][portVarOf(name)], String(spec.port), `${name} ${portVarOf(name)}`);
    for (const [k, v] of Object.entries(spec.env)) {
      if (v !== null) assert.equal(env[name][k], v, `${name} ${k}`);
    }
  }
  for (const key of ['WINDOW_SIZE_MS', 'WINDOW_GRACE_MS', 'SIM_CARS', 'SIM_RATE_HZ']) {
    const owner = Object.keys(env).find((s) => key in env[s]);
    assert.match(env[owner][key], /^\d+$/, `${key} is a non-negative integer`);
  }
});

/**
 * The services read the files named by *_FILE variables (certificates, keys, passwords) while
 * parsing their config; in this offline test those paths do not exist, so each is pointed at a
 * placeholder file of the same kind in a temporary directory (removed at exit).
 */
let placeholderDir;
function withPlaceholderFiles(env) {
  if (!placeholderDir) {
    placeholderDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pitwall-k8s-'));
    process.once('exit', () => fs.rmSync(placeholderDir, { recursive: true, force: true }));
  }
  const out = { ...env };
  for (const [k, v] of Object.entries(env)) {
    if (!k.endsWith('_FILE') || !v) continue;
    const file = path.join(placeholderDir, k);
    const pem = (label) => `-----BEGIN ${label}-----\nazhzLXRlc3QtcGxhY2Vob2xkZXI=\n-----END ${label}-----\n`;
    const text = /KEY/.test(k) ? pem('PRIVATE KEY') : /CA|CERT/.test(k) ? pem('CERTIFICATE') : 'k8s-test-placeholder\n';
    fs.writeFileSync(file, text, { mode: 0o600 });
    out[k] = file;
  }
  return out;
}

/** Runs every service's own config reader (exported by its package) on its effective environment. */
async function assertServicesAccept(objects) {
  for (const [name, env] of Object.entries(envByService(objects))) {
    const pkg = await import(`@pitwall/${name}`);
    assert.equal(typeof pkg[SERVICES[name].reader], 'function', `@pitwall/${name} exports ${SERVICES[name].reader}`);
    const config = pkg[SERVICES[name].reader](withPlaceholderFiles({ ...env, ...SERVICES[name].secretEnv }));
    assert.equal(config.healthPort, SERVICES[name].port, `${name} health port`);
    const common = config.common ?? config;
    assert.equal(common.kafka.clientId, `pitwall-${name}`);
    assert.equal(common.logLevel, env.LOG_LEVEL);
  }
}

test("base: each service's own config reader accepts its environment", async () => {
  const base = buildBase();
  await assertServicesAccept(base);
  const scoring = (await import('@pitwall/scoring')).readScoringConfig(withPlaceholderFiles(envByService(base).scoring));
  assert.deepEqual({ model: scoring.model, backend: scoring.tfjsBackend }, { model: { dir: '/models', name: 'pitwall-ae', names: ['pitwall-ae'], version: 'latest' }, backend: 'wasm' });
});

test('base: ingest pods keep their MQTT identity across restarts', () => {
  const base = buildBase();
  const ingest = byName(base, 'StatefulSet', 'ingest');
  assert.ok(ingest, 'ingest is a StatefulSet');
  assert.equal(byName(base, 'Deployment', 'ingest'), undefined);
  // The client id must come from the stable pod hostname; one fixed id would make pods take over each other's session.
  assert.equal('INGEST_CLIENT_ID' in envByService(base).ingest, false);
  const svc = byName(base, 'Service', ingest.spec.serviceName);
  assert.equal(svc?.spec.clusterIP, 'None');
});

test('base: scoring mounts the pitwall-models claim read-only at MODEL_DIR', () => {
  const base = buildBase();
  const scoring = byName(base, 'Deployment', 'scoring');
  const pod = scoring.spec.template.spec;
  const volume = pod.volumes.find((v) => v.persistentVolumeClaim?.claimName === 'pitwall-models');
  assert.ok(volume, 'a volume from the pitwall-models claim');
  assert.equal(volume.persistentVolumeClaim.readOnly, true);
  const mount = pod.containers[0].volumeMounts.find((m) => m.name === volume.name);
  assert.deepEqual({ path: mount?.mountPath, readOnly: mount?.readOnly }, { path: envByService(base).scoring.MODEL_DIR, readOnly: true });
  assert.ok(byName(base, 'PersistentVolumeClaim', 'pitwall-models').spec.resources.requests.storage);
});

test('base: the console is secure by default; the dev overlay relaxes only what port-forwarding needs', async () => {
  const { readConsoleConfig } = await import('@pitwall/console');
  const base = readConsoleConfig(withPlaceholderFiles({ ...envByService(buildBase()).console, ...SERVICES.console.secretEnv }));
  assert.equal(base.cookieSecure, true, 'Secure cookie');
  assert.ok(
    [...base.allowedOrigins].every((o) => o.startsWith('https://')),
    'only https origins may POST',
  );
  assert.equal(byName(buildBase(), 'Secret', 'pitwall-console-credentials'), undefined, 'credentials are not in the repository');
  assert.throws(() => readConsoleConfig(withPlaceholderFiles({ ...envByService(buildBase()).console, CONSOLE_USERS: 'jane:a-plain-password' })), /CONSOLE_USERS/);
  const dev = readConsoleConfig(withPlaceholderFiles({ ...envByService(buildDev()).console, ...SERVICES.console.secretEnv }));
  assert.deepEqual([...dev.allowedOrigins], ['http://127.0.0.1:8080', 'http://localhost:8080']);
  assert.equal(dev.cookieSecure, false);
});

test('base: the simulator is opt-in, the pipeline services run', () => {
  const base = buildBase();
  const replicas = Object.fromEntries(workloads(base).map((d) => [d.metadata.name, d.spec.replicas]));
  assert.equal(replicas.simulator, 0);
  for (const s of ['ingest', 'windowing', 'scoring', 'dispatch', 'incidents']) assert.ok(replicas[s] >= 1, `${s} replicas`);
});

test('base: every Secret referenced is documented or generated, with its keys, and none is optional', () => {
  const base = buildBase();
  assert.deepEqual(secretProblems(base), []);
  assert.deepEqual(fileEnvProblems(base), []);
  // The workloads do use Secrets: certificates and passwords are files, the console's users env.
  const names = new Set(base.flatMap((o) => secretRefs(o).map((r) => r.name)));
  for (const n of [
    'pitwall-kafka-cluster-ca-cert',
    'pitwall-ingest-mqtt-tls',
    'pitwall-dispatch-mqtt-tls',
    'pitwall-console-credentials',
    'registry-admin',
    ...Object.keys(KAFKA_ACCESS).map((s) => `pitwall-${s}`),
  ]) {
    assert.ok(names.has(n), `${n} is referenced`);
  }
});

test('base: each Kafka service is a KafkaUser whose ACLs cover what its config uses', async () => {
  assert.deepEqual(await kafkaAclProblems(buildBase()), []);
});

test('base: NetworkPolicies deny by default and allow exactly the flows of the diagram', () => {
  assert.deepEqual(networkPolicyProblems(buildBase()), []);
});

test('base: consumers scale on lag within their partitions, ingest on CPU', async () => {
  assert.deepEqual(await scalingProblems(buildBase()), []);
});

test('base: every workload has a PodDisruptionBudget and is scraped by the ServiceMonitor', () => {
  assert.deepEqual(availabilityProblems(buildBase()), []);
});

test("base: the registry's deploy step is a Job with the write identity, deploying what the services look up", async () => {
  const base = buildBase();
  assert.deepEqual(await jobProblems(base), []);
  // The write identity is the Job's alone: no service is given registry credentials.
  for (const [name, env] of Object.entries(envByService(base))) {
    for (const k of ['SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD_FILE']) assert.equal(env[k], undefined, `${name} ${k}`);
  }
  const pod = byName(base, 'Job', 'schemas-deploy').spec.template.spec;
  assert.deepEqual(pod.volumes.find((v) => v.secret?.secretName === 'registry-admin')?.secret.items, [{ key: 'password', path: 'password' }]);
});

test('base: MQTT clients use TLS client certificates named after the service', () => {
  const env = envByService(buildBase());
  for (const s of ['ingest', 'dispatch', 'simulator']) {
    assert.match(env[s].MQTT_URL, /^mqtts:\/\//, `${s} MQTT_URL`);
    for (const k of ['MQTT_CA_FILE', 'MQTT_CERT_FILE', 'MQTT_KEY_FILE']) assert.ok(env[s][k], `${s} ${k}`);
    assert.equal(env[s].MQTT_USERNAME, undefined, `${s}: no password login`);
  }
  const documented = fs.readFileSync(README, 'utf8');
  for (const cn of ['pitwall-ingest', 'pitwall-dispatch']) assert.match(documented, new RegExp(`CN=${cn}\\b`), `k8s/README.md documents the certificate CN=${cn}`);
});

// ------------------------------------------------------------------ tests: the dev overlay

test('dev overlay: resolves to the same objects, all valid', async () => {
  const base = buildBase();
  const dev = buildDev();
  assert.deepEqual(dev.map(idOf).sort(), base.map(idOf).sort());
  for (const o of dev) await assert.doesNotReject(validateObject(o), `${idOf(o)} is invalid`);
  assert.deepEqual(
    podOwners(dev).flatMap((d) => workloadProblems(d, dev)),
    [],
  );
  await assertServicesAccept(dev);
  assert.deepEqual(await jobProblems(dev), []);
  assert.deepEqual(secretProblems(dev), []);
  assert.deepEqual(fileEnvProblems(dev), []);
  assert.deepEqual(await kafkaAclProblems(dev), []);
  assert.deepEqual(networkPolicyProblems(dev), []);
  assert.deepEqual(await scalingProblems(dev), []);
  assert.deepEqual(availabilityProblems(dev), []);
  for (const so of dev.filter((o) => o.kind === 'ScaledObject')) assert.equal(so.spec.minReplicaCount, 1, `${so.metadata.name} starts from one pod`);
  assert.equal(byName(dev, 'HorizontalPodAutoscaler', 'ingest').spec.minReplicas, 1);
  assert.deepEqual(dev.filter((o) => o.kind === 'Secret').map(idOf), [], 'the dev overlay generates no Secret either');
});

test('dev overlay: one replica each, debug logs, :dev images, demo simulator', () => {
  const base = buildBase();
  const dev = buildDev();
  for (const d of workloads(dev)) {
    assert.equal(d.spec.replicas, 1, `${d.metadata.name} replicas`);
    assert.equal(d.spec.template.spec.containers[0].image, `pitwall/${d.metadata.name}:dev`);
  }
  // The deploy step borrows ingest's image, and follows its tag.
  assert.equal(byName(dev, 'Job', 'schemas-deploy').spec.template.spec.containers[0].image, 'pitwall/ingest:dev');
  const env = envByService(dev);
  for (const s of Object.keys(SERVICES)) assert.equal(env[s].LOG_LEVEL, 'debug', `${s} LOG_LEVEL`);
  assert.equal(env.simulator.SIM_FAILURES, 'demo');
  // A merge, not a replacement: keys the patch does not mention survive.
  assert.equal(env.simulator.SIM_RATE_HZ, envByService(base).simulator.SIM_RATE_HZ);
  assert.equal(env.ingest.KAFKA_BROKERS, envByService(base).ingest.KAFKA_BROKERS);
});

// ------------------------------------------------------------------ tests: the checks can fail

const validDeployment = () => structuredClone(byName(buildBase(), 'Deployment', 'windowing'));

test('validator: rejects broken Deployments', async () => {
  const cases = [
    ['no containers', (d) => delete d.spec.template.spec.containers, /containers/],
    ['replicas as a string', (d) => (d.spec.replicas = '2'), /replicas must be integer/],
    ['probe without a port', (d) => delete d.spec.template.spec.containers[0].livenessProbe.httpGet.port, /port/],
    ['misspelt field', (d) => (d.spec.template.spec.containers[0].readinessProbe.httpGet.paht = '/readyz'), /unknown field.*readinessProbe\.httpGet\.paht/],
    ['field at the wrong level', (d) => (d.spec.template.spec.runAsNonRoot = true), /unknown field.*spec\.template\.spec\.runAsNonRoot/],
    ['unknown kind', (d) => (d.kind = 'Deploymnet'), /no Kubernetes schema/],
  ];
  for (const [label, breakIt, message] of cases) {
    const d = validDeployment();
    breakIt(d);
    await assert.rejects(validateObject(d), message, label);
  }
  await assert.doesNotReject(validateObject(validDeployment()));
});

test('validator: rejects a ConfigMap value YAML reads as a number or boolean', async () => {
  const [numeric, boolean, quoted] = parseAllDocuments(
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {HEALTH_PORT: 9101}\n---\n' +
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {ENABLED: yes}\n---\n' +
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {HEALTH_PORT: "9101", ENABLED: "yes"}\n',
    { version: '1.1' },
  ).map((d) => d.toJS());
  await assert.rejects(validateObject(numeric), /HEALTH_PORT must be string/);
  await assert.rejects(validateObject(boolean), /ENABLED must be string/);
  await assert.doesNotReject(validateObject(quoted));
});

test('rules: report each missing safeguard of a workload', () => {
  const base = buildBase();
  const d = validDeployment();
  const c = d.spec.template.spec.containers[0];
  delete c.livenessProbe;
  c.readinessProbe.httpGet.path = '/healthz';
  delete c.resources.limits;
  c.securityContext.readOnlyRootFilesystem = false;
  d.spec.template.spec.securityContext.runAsNonRoot = false;
  delete d.spec.template.spec.automountServiceAccountToken;
  c.image = 'pitwall/windowing';
  c.envFrom = [{ configMapRef: { name: 'no-such-config' } }];
  c.env = [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'pitwall-config', key: 'NO_SUCH_KEY' } } }];
  c.volumeMounts.push({ name: 'nowhere', mountPath: '/x' });
  const problems = workloadProblems(d, base);
  for (const expected of [
    'windowing: pod securityContext.runAsNonRoot is not true',
    'windowing: pod mounts a service account token (automountServiceAccountToken is not false)',
    'windowing: container windowing: image pitwall/windowing has no pinned tag',
    'windowing: container windowing: envFrom ConfigMap no-such-config is not defined',
    'windowing: container windowing: env X: ConfigMap pitwall-config has no key NO_SUCH_KEY',
    'windowing: container windowing: no livenessProbe httpGet',
    'windowing: container windowing: readinessProbe path is /healthz, expected /readyz',
    'windowing: container windowing: no cpu limit',
    'windowing: container windowing: no memory limit',
    'windowing: container windowing: root filesystem is writable',
    'windowing: container windowing: volumeMount nowhere has no volume',
  ]) {
    assert.ok(problems.includes(expected), `expected "${expected}" in:\n${problems.join('\n')}`);
  }
  // Without windowing-config, HEALTH_PORT is unknown, so the probes no longer match it either.
  assert.ok(problems.some((p) => p.includes('readinessProbe port health is not HEALTH_PORT')));
});

test('rules: a StatefulSet needs its headless Service', () => {
  const base = buildBase();
  const objects = structuredClone(base);
  const ingest = byName(objects, 'StatefulSet', 'ingest');
  assert.deepEqual(workloadProblems(ingest, objects), []);
  const svc = byName(objects, 'Service', 'ingest');
  svc.spec.selector['app.kubernetes.io/name'] = 'windowing';
  delete svc.spec.clusterIP;
  assert.deepEqual(workloadProblems(ingest, objects), ['ingest: Service ingest is not headless', 'ingest: Service ingest does not select the pods']);
  ingest.spec.serviceName = 'nowhere';
  assert.deepEqual(workloadProblems(ingest, objects), ['ingest: serviceName nowhere is not a Service in the set']);
});

test('rules: the health port must agree between ConfigMap, container port and probes', () => {
  const base = buildBase();
  const objects = structuredClone(base);
  byName(objects, 'ConfigMap', 'scoring-config').data.HEALTH_PORT = '9999';
  const problems = workloadProblems(byName(objects, 'Deployment', 'scoring'), objects);
  assert.deepEqual(problems, [
    'scoring: container scoring: livenessProbe port health is not HEALTH_PORT 9999',
    'scoring: container scoring: readinessProbe port health is not HEALTH_PORT 9999',
    'scoring: container scoring: HEALTH_PORT 9999 is not a container port',
  ]);
});

test('rules: a ConfigMap value the services would refuse is caught by their config readers', async () => {
  const env = envByService(buildBase());
  const { readIngestConfig } = await import('@pitwall/ingest');
  assert.throws(() => readIngestConfig({ ...env.ingest, LOG_LEVEL: 'verbose', MQTT_URL: 'http://mosquitto:1883' }), /LOG_LEVEL.*MQTT_URL|MQTT_URL.*LOG_LEVEL/);
  const { readScoringConfig } = await import('@pitwall/scoring');
  assert.throws(() => readScoringConfig({ ...env.scoring, TFJS_BACKEND: 'webgl' }), /TFJS_BACKEND/);
  const { readWindowingConfig } = await import('@pitwall/windowing');
  assert.throws(() => readWindowingConfig({ ...env.windowing, WINDOW_SIZE_MS: '10s' }), /WINDOW_SIZE_MS/);
});

test('rules: Secrets must be documented, with their keys, and never optional', () => {
  const objects = structuredClone(buildBase());
  const ingest = byName(objects, 'StatefulSet', 'ingest').spec.template.spec;
  ingest.volumes.find((v) => v.name === 'mqtt-tls').secret.secretName = 'pitwall-ingest-mqtt';
  ingest.volumes.find((v) => v.name === 'kafka-ca').secret.optional = true;
  const console = byName(objects, 'Deployment', 'console').spec.template.spec.containers[0];
  console.env[0].valueFrom.secretKeyRef.key = 'USERS';
  ingest.containers[0].envFrom.push({ secretRef: { name: 'pitwall-mqtt-credentials', optional: true } });
  assert.deepEqual(
    secretProblems(objects),
    [
      'StatefulSet ingest volume kafka-ca: Secret pitwall-kafka-cluster-ca-cert is optional',
      'StatefulSet ingest volume mqtt-tls: Secret pitwall-ingest-mqtt is neither generated nor documented in k8s/README.md',
      'StatefulSet ingest container ingest envFrom: Secret pitwall-mqtt-credentials is optional',
      'StatefulSet ingest container ingest envFrom: Secret pitwall-mqtt-credentials is neither generated nor documented in k8s/README.md',
      'Deployment console container console env CONSOLE_USERS: Secret pitwall-console-credentials has no documented key USERS',
    ].sort((a, b) => objects.findIndex((o) => a.includes(`${o.kind} ${o.metadata.name} `)) - objects.findIndex((o) => b.includes(`${o.kind} ${o.metadata.name} `))),
  );
  // A KafkaUser removed: its Secret is no longer known; a *_FILE path off the mounts is reported.
  const noUser = structuredClone(buildBase()).filter((o) => !(o.kind === 'KafkaUser' && o.metadata.name === 'pitwall-scoring'));
  assert.ok(secretProblems(noUser).includes('Deployment scoring volume kafka-user: Secret pitwall-scoring is neither generated nor documented in k8s/README.md'));
  byName(noUser, 'ConfigMap', 'scoring-config').data.KAFKA_SSL_CA_FILE = '/etc/ssl/ca.crt';
  assert.deepEqual(fileEnvProblems(noUser), ['scoring: KAFKA_SSL_CA_FILE=/etc/ssl/ca.crt is not a file of a mounted Secret']);
  // The README table is what documents them.
  assert.deepEqual([...documentedSecrets('| `a-b` | `k1`, `k2` | x |\n| `c` | nothing | y |\n').entries()], [['a-b', new Set(['k1', 'k2'])]]);
});

test('rules: a KafkaUser must cover the topics, groups and transactional ids the service uses', async () => {
  const objects = structuredClone(buildBase());
  // A renamed topic the ACLs do not know, a lost transactional-id rule, a user that does not exist.
  byName(objects, 'ConfigMap', 'pitwall-config').data.TOPIC_SCORES = 'vehicle.scores.v2';
  const incidents = byName(objects, 'KafkaUser', 'pitwall-incidents');
  incidents.spec.authorization.acls = incidents.spec.authorization.acls.filter((a) => a.resource.type !== 'transactionalId');
  byName(objects, 'ConfigMap', 'dispatch-config').data.KAFKA_SASL_USERNAME = 'pitwall-nobody';
  const problems = await kafkaAclProblems(objects);
  for (const p of [
    'scoring: KafkaUser pitwall-scoring may not Write topic vehicle.scores.v2',
    'incidents: KafkaUser pitwall-incidents may not Write transactionalId pitwall-incidents-p0',
    'dispatch: no KafkaUser pitwall-nobody',
  ])
    assert.ok(problems.includes(p), `expected "${p}" in:\n${problems.join('\n')}`);
  // Its consumers too.
  assert.ok(problems.includes('incidents: KafkaUser pitwall-incidents may not Read topic vehicle.scores.v2'));
  await assert.rejects(validateKafkaUser({ ...incidents, spec: { ...incidents.spec, authentication: { type: 'scram-sha-256' } } }), /authentication.type/);
  await assert.rejects(
    validateKafkaUser({ ...incidents, spec: { ...incidents.spec, authorization: { type: 'simple', acls: [{ resource: { type: 'topic', name: 'x' }, operations: ['Reed'] }] } } }),
    /Reed is not a Kafka ACL operation/,
  );
  await assert.rejects(validateKafkaUser({ ...incidents, spec: { ...incidents.spec, quota: {} } }), /unknown field\(s\): spec.quota/);
});

test('rules: NetworkPolicies fail without default deny, with a missing or a too wide flow', () => {
  const objects = structuredClone(buildBase());
  const without = objects.filter((o) => !(o.kind === 'NetworkPolicy' && o.metadata.name === 'default-deny'));
  assert.deepEqual(networkPolicyProblems(without), [`no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules) in ${NAMESPACE}`]);
  // scoring loses the registry; windowing is given MQTT; the console's peer selects any pod of its namespace.
  const scoring = byName(objects, 'NetworkPolicy', 'scoring-egress');
  scoring.spec.egress = scoring.spec.egress.filter((r) => r.ports[0].port !== 8080);
  byName(objects, 'NetworkPolicy', 'windowing-egress').spec.egress.push(structuredClone(byName(objects, 'NetworkPolicy', 'ingest-egress').spec.egress[0]));
  delete byName(objects, 'NetworkPolicy', 'console-egress').spec.egress[0].to[0].podSelector;
  assert.deepEqual(
    networkPolicyProblems(objects).sort(),
    ['windowing may reach mqtt (mqtt:8883), not in the diagram', 'scoring may not reach registry (registry:8080)', "console may reach any pod in namespace kafka (kafka's)"].sort(),
  );
  // The peer labels kustomize's commonLabels would add to matchLabels (why the policies use matchExpressions).
  const relabelled = structuredClone(buildBase());
  const peer = byName(relabelled, 'NetworkPolicy', 'ingest-egress').spec.egress[1].to[0];
  peer.podSelector = { matchLabels: { 'strimzi.io/cluster': 'pitwall-kafka', [PART_OF]: 'pitwall' } };
  assert.deepEqual(networkPolicyProblems(relabelled), ['ingest may not reach kafka (kafka:9093)']);
  // Moving Kafka in config.yaml without the policies.
  const moved = structuredClone(buildBase());
  byName(moved, 'ConfigMap', 'pitwall-config').data.KAFKA_BROKERS = 'pitwall-kafka-kafka-bootstrap.streaming.svc:9093';
  assert.ok(networkPolicyProblems(moved).includes('ingest may not reach kafka (streaming:9093)'));
});

test('rules: a ScaledObject above its partitions, or on the wrong group or credentials, fails', async () => {
  const objects = structuredClone(buildBase());
  byName(objects, 'ScaledObject', 'scoring').spec.maxReplicaCount = 12;
  const w = byName(objects, 'ScaledObject', 'windowing').spec.triggers[0];
  w.metadata.consumerGroup = 'windowing';
  w.metadata.topic = 'vehicle.features';
  byName(objects, 'TriggerAuthentication', 'incidents-kafka').spec.secretTargetRef[0].name = 'pitwall-scoring';
  byName(objects, 'ConfigMap', 'console-config').data.TOPIC_PARTITIONS = '3';
  const problems = await scalingProblems(objects);
  assert.deepEqual(problems, [
    'services create topics with different partition counts: 3, 6 (TOPIC_PARTITIONS)',
    'windowing: maxReplicaCount 6 exceeds the 3 partitions of vehicle.telemetry',
    "windowing: consumerGroup windowing is not the service's group pitwall-windowing",
    'windowing: topic vehicle.features is not its input vehicle.telemetry',
    'scoring: maxReplicaCount 12 exceeds the 3 partitions of vehicle.features',
    'incidents: maxReplicaCount 6 exceeds the 3 partitions of vehicle.scores',
    'incidents: password is not key "password" of the KafkaUser Secret pitwall-incidents',
  ]);
  const noHpa = structuredClone(buildBase()).filter((o) => o.kind !== 'HorizontalPodAutoscaler');
  assert.deepEqual(await scalingProblems(noHpa), ['ingest: no HorizontalPodAutoscaler']);
});

test('rules: a workload without a PodDisruptionBudget or a scraped metrics port fails', () => {
  const objects = structuredClone(buildBase()).filter((o) => !(o.kind === 'PodDisruptionBudget' && o.metadata.name === 'scoring'));
  byName(objects, 'Service', 'windowing').spec.ports[0].targetPort = 8080;
  byName(objects, 'Service', 'incidents').metadata.labels[PART_OF] = 'other';
  assert.deepEqual(
    availabilityProblems(objects),
    ['windowing: no ServiceMonitor scrapes /metrics on its port 9102', 'scoring: no PodDisruptionBudget', 'incidents: no ServiceMonitor scrapes /metrics on its port 9106'].sort(
      (a, b) => workloads(objects).findIndex((w) => a.startsWith(`${w.metadata.name}:`)) - workloads(objects).findIndex((w) => b.startsWith(`${w.metadata.name}:`)),
    ),
  );
});

test('rules: a Job is hardened like the services, must end, and deploys what the services look up', async () => {
  const objects = structuredClone(buildBase());
  const job = byName(objects, 'Job', 'schemas-deploy');
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  // What only long-running pods have is not asked of a Job; a Deployment without it still fails.
  assert.deepEqual(workloadProblems(job, objects), []);
  assert.ok(workloadProblems({ ...structuredClone(job), kind: 'Deployment' }, objects).includes('schemas-deploy: container schemas-deploy: no livenessProbe httpGet'));
  pod.restartPolicy = 'Always';
  delete job.spec.activeDeadlineSeconds;
  delete pod.automountServiceAccountToken;
  c.securityContext.readOnlyRootFilesystem = false;
  delete c.resources.limits.cpu;
  assert.deepEqual(workloadProblems(job, objects), [
    'schemas-deploy: pod mounts a service account token (automountServiceAccountToken is not false)',
    "schemas-deploy: restartPolicy is Always: a Job's pods need Never or OnFailure",
    'schemas-deploy: activeDeadlineSeconds is not set: a hung run would never end',
    'schemas-deploy: container schemas-deploy: no cpu limit',
    'schemas-deploy: container schemas-deploy: root filesystem is writable',
  ]);
  // Its Secret optional, its password file off the mounts.
  pod.volumes.find((v) => v.name === 'registry-admin').secret.optional = true;
  assert.deepEqual(secretProblems(objects), ['Job schemas-deploy volume registry-admin: Secret registry-admin is optional']);
  c.volumeMounts.find((m) => m.name === 'registry-admin').mountPath = '/etc/pitwall/registry';
  assert.deepEqual(fileEnvProblems(objects), ['schemas-deploy: SCHEMA_REGISTRY_PASSWORD_FILE=/etc/pitwall/registry-admin/password is not a file of a mounted Secret']);
  // Given Kafka; Prometheus let in on every port of every pod; without its policy it cannot reach the registry.
  const policy = byName(objects, 'NetworkPolicy', 'schemas-deploy-egress');
  policy.spec.egress.push(structuredClone(byName(objects, 'NetworkPolicy', 'ingest-egress').spec.egress[1]));
  delete byName(objects, 'NetworkPolicy', 'allow-prometheus-scrape').spec.ingress[0].ports;
  assert.deepEqual(
    networkPolicyProblems(objects).filter((p) => p.includes('schemas-deploy')),
    ['schemas-deploy may reach kafka (kafka:9093), not in the diagram', 'Prometheus may reach schemas-deploy on 8080'],
  );
  const noPolicy = structuredClone(buildBase()).filter((o) => !(o.kind === 'NetworkPolicy' && o.metadata.name === 'schemas-deploy-egress'));
  assert.deepEqual(networkPolicyProblems(noPolicy), ['schemas-deploy may not reach registry (registry:8080)']);

  // Its own rules: the command, the write identity, the topics of the services.
  const other = structuredClone(buildBase());
  const oc = byName(other, 'Job', 'schemas-deploy').spec.template.spec.containers[0];
  oc.command = oc.command.map((a) => (a === 'deploy' ? 'check' : a));
  byName(other, 'ConfigMap', 'windowing-config').data.TOPIC_FEATURES = 'vehicle.features.v2';
  assert.deepEqual(await jobProblems(other), [
    'schemas-deploy: runs `node /app/services/common/dist/src/schemas-cli.js check`, expected `node /app/services/common/dist/src/schemas-cli.js deploy`',
    'schemas-deploy: registers vehicle.features-value, but windowing looks up vehicle.features.v2-value',
  ]);
  delete byName(other, 'ConfigMap', 'schemas-deploy-config').data.SCHEMA_REGISTRY_USERNAME;
  const problems = await jobProblems(other);
  assert.ok(problems.includes('schemas-deploy: SCHEMA_REGISTRY_USERNAME is not set'), problems.join('\n'));
  // The CLI's own reader refuses a password without a user.
  assert.ok(
    problems.some((p) => /^schemas-deploy: SCHEMA_REGISTRY_USERNAME: is required with SCHEMA_REGISTRY_PASSWORD/.test(p)),
    problems.join('\n'),
  );
  const noJob = structuredClone(buildBase()).filter((o) => o.kind !== 'Job');
  assert.deepEqual(await jobProblems(noJob), ['schemas-deploy: no Job']);
});
