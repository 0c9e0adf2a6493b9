/**
 * Offline validation of the Kubernetes manifests in k8s/: no cluster, no kubectl.
 *
 * 1. A minimal kustomize reader builds k8s/base and k8s/overlays/dev. It implements only the
 *    kustomization fields this repository uses (resources, namespace, commonLabels, replicas,
 *    images, patches with strategic-merge patches of maps) and throws on anything else, so a
 *    manifest change it cannot reproduce fails here instead of being silently ignored.
 * 2. Every resulting object is validated against the Kubernetes OpenAPI schema compiled into
 *    kubernetes-models, plus a strict pass that rejects fields the schema does not know (what
 *    `kubectl apply` does with its default --validate=strict).
 * 3. Pitwall's own rules: probes, resources, hardening, ConfigMap references, and that each
 *    service's effective environment is accepted by that service's own config reader
 *    (read<Name>Config from its package), so a value the service would refuse fails here.
 *
 * YAML is read as YAML 1.1, like the Go YAML library Kubernetes uses: `yes`/`on` are booleans.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
const SHARED_ENV = [
  'LOG_LEVEL', 'KAFKA_BROKERS', 'KAFKA_CLIENT_ID', 'SCHEMA_REGISTRY_URL', 'MQTT_URL',
  'TOPIC_TELEMETRY', 'TOPIC_TELEMETRY_DLQ', 'TOPIC_FEATURES', 'TOPIC_ALERTS', 'HEALTH_PORT',
];

// ------------------------------------------------------------------ minimal kustomize

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'commonLabels', 'resources', 'replicas', 'images', 'patches']);
const CLUSTER_SCOPED = new Set([
  'Namespace', 'PersistentVolume', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass',
  'CustomResourceDefinition', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration',
]);
const POD_TEMPLATE_KINDS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet']);
const SCALABLE_KINDS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet']);

function parseYamlDocs(text, where) {
  const out = [];
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}
const readYamlDocs = (file) => parseYamlDocs(fs.readFileSync(file, 'utf8'), file);

const idOf = (o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** kustomize build <dir>, for the fields listed in KUSTOMIZATION_FIELDS only. */
function kustomize(dir) {
  const file = path.join(dir, 'kustomization.yaml');
  const [k, ...extra] = readYamlDocs(file);
  if (!k || extra.length) throw new Error(`${file}: expected exactly one document`);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_FIELDS.has(key)) throw new Error(`${file}: "${key}" is not supported by this test's kustomize reader`);
  }
  let objects = [];
  for (const entry of k.resources ?? []) {
    const p = path.resolve(dir, entry);
    if (!fs.existsSync(p)) throw new Error(`${file}: resource ${entry} does not exist`);
    objects.push(...(fs.statSync(p).isDirectory() ? kustomize(p) : readYamlDocs(p)));
  }
  objects = structuredClone(objects);

  for (const patchEntry of k.patches ?? []) {
    if (patchEntry.target || Object.keys(patchEntry).some((x) => x !== 'path' && x !== 'patch')) {
      throw new Error(`${file}: only patches with "path" or "patch" and no target are supported`);
    }
    const patches = patchEntry.path ? readYamlDocs(path.resolve(dir, patchEntry.path)) : parseYamlDocs(String(patchEntry.patch), `${file} inline patch`);
    for (const patch of patches) applyStrategicMergePatch(objects, patch, file);
  }
  for (const { name, count, ...rest } of k.replicas ?? []) {
    if (Object.keys(rest).length || !Number.isInteger(count)) throw new Error(`${file}: replicas entries are {name, count}`);
    const targets = objects.filter((o) => SCALABLE_KINDS.has(o.kind) && o.metadata.name === name);
    if (!targets.length) throw new Error(`${file}: replicas: no workload named ${name}`);
    for (const o of targets) o.spec.replicas = count;
  }
  for (const image of k.images ?? []) applyImage(objects, image, file);
  if (k.namespace) {
    for (const o of objects) {
      if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    }
  }
  if (k.commonLabels) {
    for (const o of objects) applyCommonLabels(o, k.commonLabels);
  }
  const seen = new Set();
  for (const o of objects) {
    if (seen.has(idOf(o))) throw new Error(`${file}: ${idOf(o)} is defined twice`);
    seen.add(idOf(o));
  }
  return objects;
}

/** Strategic merge limited to maps: arrays would need the per-field merge keys of the API. */
function applyStrategicMergePatch(objects, patch, file) {
  const target = objects.find(
    (o) =>
      o.apiVersion === patch.apiVersion &&
      o.kind === patch.kind &&
      o.metadata.name === patch.metadata?.name &&
      (patch.metadata.namespace === undefined || o.metadata.namespace === patch.metadata.namespace),
  );
  if (!target) throw new Error(`${file}: patch target ${patch.kind}/${patch.metadata?.name} not found`);
  mergeInto(target, patch, `${patch.kind}/${patch.metadata.name}`);
}

function mergeInto(dst, src, where) {
  for (const [key, value] of Object.entries(src)) {
    if (key.startsWith('$')) throw new Error(`${where}: patch directive ${key} is not supported`);
    if (Array.isArray(value)) throw new Error(`${where}.${key}: list patches are not supported by this reader`);
    if (value === null) delete dst[key];
    else if (isPlainObject(value) && isPlainObject(dst[key])) mergeInto(dst[key], value, `${where}.${key}`);
    else dst[key] = structuredClone(value);
  }
}

function podSpecs(o) {
  if (POD_TEMPLATE_KINDS.has(o.kind) || o.kind === 'Job') return o.spec?.template?.spec ? [o.spec.template.spec] : [];
  return [];
}

function applyImage(objects, { name, newName, newTag, digest, ...rest }, file) {
  if (Object.keys(rest).length || !name) throw new Error(`${file}: images entries are {name, newName?, newTag?, digest?}`);
  let matched = 0;
  for (const o of objects) {
    for (const spec of podSpecs(o)) {
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        const m = /^(?<repo>[^@]+?)(?::(?<tag>[\w][\w.-]*))?(?:@(?<dig>.+))?$/.exec(c.image ?? '');
        if (!m || m.groups.repo !== name) continue;
        matched++;
        const repo = newName ?? m.groups.repo;
        if (digest) c.image = `${repo}@${digest}`;
        else if (newTag) c.image = `${repo}:${newTag}`;
        else c.image = `${repo}${m.groups.tag ? `:${m.groups.tag}` : ''}${m.groups.dig ? `@${m.groups.dig}` : ''}`;
      }
    }
  }
  if (!matched) throw new Error(`${file}: images: no container uses ${name}`);
}

function applyCommonLabels(o, labels) {
  o.metadata.labels = { ...o.metadata.labels, ...labels };
  if (POD_TEMPLATE_KINDS.has(o.kind)) {
    o.spec.selector ??= {};
    o.spec.selector.matchLabels = { ...o.spec.selector.matchLabels, ...labels };
  }
  if (POD_TEMPLATE_KINDS.has(o.kind) || o.kind === 'Job') {
    o.spec.template.metadata ??= {};
    o.spec.template.metadata.labels = { ...o.spec.template.metadata.labels, ...labels };
  }
  if (o.kind === 'Service' && o.spec?.selector) o.spec.selector = { ...o.spec.selector, ...labels };
}

// ------------------------------------------------------------------ schema validation

const modelModules = new Map();

async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new Error('apiVersion and kind are required');
  if (!modelModules.has(apiVersion)) {
    // Core resources live in kubernetes-models/v1, the others in kubernetes-models/<group>/<version>.
    modelModules.set(apiVersion, import(`kubernetes-models/${apiVersion}`).catch(() => null));
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

/** Problems of one Deployment or StatefulSet in the context of the whole build; [] when it is fine. */
function workloadProblems(dep, objects) {
  const problems = [];
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
    const portVar = portVarOf(c.name);
    const healthPort = Number(env[portVar]);
    const portOf = (p) => (typeof p === 'number' ? p : (c.ports ?? []).find((x) => x.name === p)?.containerPort);
    for (const [probe, wanted] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']]) {
      const get = c[probe]?.httpGet;
      if (!get) problems.push(`${at}: no ${probe} httpGet`);
      else {
        if (get.path !== wanted) problems.push(`${at}: ${probe} path is ${get.path}, expected ${wanted}`);
        if (portOf(get.port) !== healthPort) problems.push(`${at}: ${probe} port ${get.port} is not ${portVar} ${env[portVar]}`);
      }
    }
    if (!(c.ports ?? []).some((p) => p.containerPort === healthPort)) problems.push(`${at}: ${portVar} ${env[portVar]} is not a container port`);

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
  if (!Number.isInteger(dep.spec?.replicas)) problems.push(`replicas is not set`);
  if (problems.length) return problems.map((p) => `${name}: ${p}`);
  return [];
}

/** The first container's effective environment, by workload name. */
function envByService(objects) {
  const byId = new Map(objects.map((o) => [idOf(o), o]));
  return Object.fromEntries(
    workloads(objects)
      .map((d) => [d.metadata.name, effectiveEnv(d.spec.template.spec.containers[0], byId, d.metadata.namespace)]),
  );
}

const workloads = (objects) => objects.filter((o) => WORKLOAD_KINDS.has(o.kind));
const byName = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);

/** Built on first use, inside a test: a build error fails the tests, not the file's loading. */
const once = (fn) => {
  let result;
  return () => (result ??= { value: fn() }).value;
};
const buildBase = once(() => kustomize(BASE));
const buildDev = once(() => kustomize(DEV));

// ------------------------------------------------------------------ tests: the base

test('base: builds the expected objects', () => {
  const base = buildBase();
  const ids = base.map(idOf).sort();
  const expected = [
    `Namespace//${NAMESPACE}`,
    `PersistentVolumeClaim/${NAMESPACE}/pitwall-models`,
    `ConfigMap/${NAMESPACE}/pitwall-config`,
    `Service/${NAMESPACE}/ingest`,
    ...Object.entries(SERVICES).flatMap(([s, { kind, service }]) => [
      `ConfigMap/${NAMESPACE}/${s}-config`,
      `${kind}/${NAMESPACE}/${s}`,
      ...(service ? [`Service/${NAMESPACE}/${s}`] : []),
    ]),
  ].sort();
  assert.deepEqual(ids, expected);
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
});

test('base: every workload has probes, resources, hardening and resolvable references', () => {
  const base = buildBase();
  const problems = workloads(base).flatMap((d) => workloadProblems(d, base));
  assert.deepEqual(problems, []);
});

test('base: every ConfigMap is used by a workload', () => {
  const base = buildBase();
  const used = new Set(workloads(base).flatMap((d) => d.spec.template.spec.containers.flatMap((c) => (c.envFrom ?? []).map((s) => s.configMapRef?.name))));
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

/** Runs every service's own config reader (exported by its package) on its effective environment. */
async function assertServicesAccept(objects) {
  for (const [name, env] of Object.entries(envByService(objects))) {
    const pkg = await import(`@pitwall/${name}`);
    assert.equal(typeof pkg[SERVICES[name].reader], 'function', `@pitwall/${name} exports ${SERVICES[name].reader}`);
    const config = pkg[SERVICES[name].reader]({ ...env, ...SERVICES[name].secretEnv });
    assert.equal(config.healthPort, SERVICES[name].port, `${name} health port`);
    const common = config.common ?? config;
    assert.equal(common.kafka.clientId, `pitwall-${name}`);
    assert.equal(common.logLevel, env.LOG_LEVEL);
  }
}

test("base: each service's own config reader accepts its environment", async () => {
  const base = buildBase();
  await assertServicesAccept(base);
  const scoring = (await import('@pitwall/scoring')).readScoringConfig(envByService(base).scoring);
  assert.deepEqual({ model: scoring.model, backend: scoring.tfjsBackend }, { model: { dir: '/models', name: 'pitwall-ae', version: 'latest' }, backend: 'wasm' });
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
  const base = readConsoleConfig({ ...envByService(buildBase()).console, ...SERVICES.console.secretEnv });
  assert.equal(base.cookieSecure, true, 'Secure cookie');
  assert.ok([...base.allowedOrigins].every((o) => o.startsWith('https://')), 'only https origins may POST');
  assert.equal(byName(buildBase(), 'Secret', 'pitwall-console-credentials'), undefined, 'credentials are not in the repository');
  assert.throws(() => readConsoleConfig({ ...envByService(buildBase()).console, CONSOLE_USERS: 'jane:a-plain-password' }), /CONSOLE_USERS/);
  const dev = readConsoleConfig({ ...envByService(buildDev()).console, ...SERVICES.console.secretEnv });
  assert.deepEqual([...dev.allowedOrigins], ['http://127.0.0.1:8080', 'http://localhost:8080']);
  assert.equal(dev.cookieSecure, false);
});

test('base: the simulator is opt-in, the pipeline services run', () => {
  const base = buildBase();
  const replicas = Object.fromEntries(workloads(base).map((d) => [d.metadata.name, d.spec.replicas]));
  assert.equal(replicas.simulator, 0);
  for (const s of ['ingest', 'windowing', 'scoring', 'dispatch', 'incidents']) assert.ok(replicas[s] >= 1, `${s} replicas`);
});

// ------------------------------------------------------------------ tests: the dev overlay

test('dev overlay: resolves to the same objects, all valid', async () => {
  const base = buildBase();
  const dev = buildDev();
  assert.deepEqual(dev.map(idOf).sort(), base.map(idOf).sort());
  for (const o of dev) await assert.doesNotReject(validateObject(o), `${idOf(o)} is invalid`);
  assert.deepEqual(workloads(dev).flatMap((d) => workloadProblems(d, dev)), []);
  await assertServicesAccept(dev);
});

test('dev overlay: one replica each, debug logs, :dev images, demo simulator', () => {
  const base = buildBase();
  const dev = buildDev();
  for (const d of workloads(dev)) {
    assert.equal(d.spec.replicas, 1, `${d.metadata.name} replicas`);
    assert.equal(d.spec.template.spec.containers[0].image, `pitwall/${d.metadata.name}:dev`);
  }
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
  c.image = 'pitwall/windowing';
  c.envFrom = [{ configMapRef: { name: 'no-such-config' } }];
  c.env = [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'pitwall-config', key: 'NO_SUCH_KEY' } } }];
  c.volumeMounts.push({ name: 'nowhere', mountPath: '/x' });
  const problems = workloadProblems(d, base);
  for (const expected of [
    'windowing: pod securityContext.runAsNonRoot is not true',
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

test('kustomize reader: fails on what it does not implement', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pitwall-k8s-'));
  try {
    const write = (name, text) => fs.writeFileSync(path.join(dir, name), text);
    write('cm.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {K: v}\n');
    write('deploy.yaml', fs.readFileSync(path.join(BASE, 'windowing.yaml'), 'utf8'));
    const cases = [
      ['configMapGenerator: [{name: g, literals: [A=b]}]\nresources: [cm.yaml]\n', /"configMapGenerator" is not supported/],
      ['resources: [missing.yaml]\n', /missing\.yaml does not exist/],
      ['resources: [cm.yaml, cm.yaml]\n', /defined twice/],
      ['resources: [cm.yaml]\npatches: [{patch: "apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: b}\\ndata: {K: w}"}]\n', /patch target ConfigMap\/b not found/],
      ['resources: [deploy.yaml]\npatches: [{patch: "apiVersion: apps/v1\\nkind: Deployment\\nmetadata: {name: windowing}\\nspec: {template: {spec: {containers: []}}}"}]\n', /list patches are not supported/],
      ['resources: [deploy.yaml]\nreplicas: [{name: nope, count: 2}]\n', /no workload named nope/],
      ['resources: [deploy.yaml]\nimages: [{name: pitwall/nope, newTag: x}]\n', /no container uses pitwall\/nope/],
    ];
    for (const [kustomization, message] of cases) {
      write('kustomization.yaml', kustomization);
      assert.throws(() => kustomize(dir), message, kustomization);
    }
    write('kustomization.yaml', 'resources: [cm.yaml]\npatches: [{patch: "apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: a}\\ndata: {K: w, L: x}"}]\n');
    assert.deepEqual(kustomize(dir)[0].data, { K: 'w', L: 'x' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
