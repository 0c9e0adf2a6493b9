/**
 * Counters keyed by metric name, with optional labels, backed by a prom-client Registry: every
 * counter is registered there under its own name and appears on /metrics (health.ts) as a
 * Prometheus counter family. Each service lists its metric names, help texts and label names in
 * its own metrics.ts.
 *
 * One store: a counter family keeps its series here, and the registered prom-client Counter reads
 * them when the registry is scraped (its collect()), so an event is counted once and get(),
 * snapshot() and /metrics all show the same numbers. Families are per registry: two Counters
 * created on the same registry (a service's core and its readiness tracker) share a family of the
 * same name instead of registering it twice. Without a registry a private one is made (tests); the
 * global default registry of prom-client is never used.
 *
 * Keys: `name`, or `name{label="value",...}` (the form snapshot() gives and get() accepts). The
 * `reason` argument of inc() is the label `reason`. A family's label names are those of its spec
 * (an inc() with another label throws: a programming error), or, for a family declared by name
 * only, every label it has been incremented with.
 */
import { Counter, Registry } from 'prom-client';

export interface Counters {
  inc(name: string, by?: number, reason?: string): void;
  /** A series (`name{reason="x"}`), or a whole family by its bare name (the sum of its series). */
  get(name: string): number;
  /**
   * Every family this object declared or incremented: a family without labels as `name`; one with
   * labels as its total under `name` plus each series under `name{label="value",...}`.
   */
  snapshot(): Record<string, number>;
  /** The registry the counters are exported from. */
  readonly registry: Registry;
}

export interface CounterSpec {
  /** HELP text on /metrics. */
  help?: string;
  /** Label names (e.g. ['reason']); fixed per family. Undeclared: those of the first inc(). */
  labels?: readonly string[];
}

/** Counter families by name. */
export type CounterSpecs = Readonly<Record<string, CounterSpec>>;

interface Series {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Label names given in a spec: an inc() with others is a programming error. */
  fixed: boolean;
  /** By canonical key (labels in labelNames order). */
  series: Map<string, Series>;
}

const families = new WeakMap<Registry, Map<string, Family>>();

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const escapeValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** `name{a="x",b="y"}` in the given label order; `name` without labels. */
export function seriesKey(name: string, labels: Readonly<Record<string, string>>, order: readonly string[] = Object.keys(labels)): string {
  const parts = order.filter((k) => labels[k] !== undefined).map((k) => `${k}="${escapeValue(labels[k]!)}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

/** Splits `name{a="x",b="y"}` into its name and labels (values unescaped). */
export function parseSeriesKey(key: string): { name: string; labels: Record<string, string> } {
  const brace = key.indexOf('{');
  if (brace < 0) return { name: key, labels: {} };
  if (!key.endsWith('}')) throw new TypeError(`not a metric key: ${key}`);
  const name = key.slice(0, brace);
  const labels: Record<string, string> = {};
  const body = key.slice(brace + 1, -1);
  const pair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < body.length) {
    pair.lastIndex = at;
    const m = pair.exec(body);
    if (!m) throw new TypeError(`not a metric key: ${key}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    at = pair.lastIndex;
  }
  return { name, labels };
}

/** (Re)registers the family's prom-client Counter with its current label names. */
function register(registry: Registry, family: Family): void {
  registry.removeSingleMetric(family.name);
  new Counter({
    name: family.name,
    help: family.help,
    labelNames: family.labelNames,
    registers: [registry],
    // The series live in the family; a scrape copies them.
    collect(this: Counter<string>) {
      this.reset();
      for (const s of family.series.values()) this.inc(s.labels, s.value);
    },
  });
}

function familyOf(registry: Registry, name: string, spec: CounterSpec | undefined, firstLabels: readonly string[]): Family {
  let byName = families.get(registry);
  if (!byName) families.set(registry, (byName = new Map<string, Family>()));
  const existing = byName.get(name);
  if (existing) return existing;
  if (!NAME.test(name)) throw new TypeError(`invalid metric name: ${name}`);
  const family: Family = {
    name,
    help: spec?.help ?? `Pitwall counter ${name}.`,
    labelNames: [...(spec?.labels ?? firstLabels)],
    fixed: spec?.labels !== undefined,
    series: new Map(),
  };
  if (family.labelNames.length === 0) family.series.set(name, { labels: {}, value: 0 });
  register(registry, family);
  byName.set(name, family);
  return family;
}

/** Adds label names to a family declared without them (a plain list of names); a declared set is fixed. */
function widen(registry: Registry, family: Family, labels: readonly string[]): void {
  const extra = labels.filter((l) => !family.labelNames.includes(l));
  if (extra.length === 0) return;
  if (family.fixed) throw new TypeError(`counter ${family.name} has labels [${family.labelNames.join(', ')}], not ${extra.join(', ')}`);
  family.labelNames = [...family.labelNames, ...extra];
  // The zero it was declared with is no series of a labelled family.
  const bare = family.series.get(family.name);
  if (bare && bare.value === 0) family.series.delete(family.name);
  register(registry, family);
}

/**
 * `specs`: names to declare now (they start at 0, so /metrics and snapshot() list them before they
 * first move), as a list of names or with help texts and label names. `registry`: where they are
 * exported (a private one when absent).
 */
export function createCounters(specs: readonly string[] | CounterSpecs = [], registry: Registry = new Registry()): Counters {
  const declared: CounterSpecs = Array.isArray(specs) ? Object.fromEntries((specs as readonly string[]).map((n) => [n, {}])) : (specs as CounterSpecs);
  const known = new Map<string, Family>();
  const family = (name: string, labelNames: readonly string[]): Family => {
    let f = known.get(name);
    if (!f) known.set(name, (f = familyOf(registry, name, declared[name], labelNames)));
    return f;
  };
  for (const name of Object.keys(declared)) family(name, []);

  // Parsed keys, so the hot path (a plain name or a repeated reason) does no parsing.
  const resolved = new Map<string, { family: Family; key: string; labels: Record<string, string> }>();
  const resolve = (name: string, reason: string | undefined): { family: Family; key: string; labels: Record<string, string> } => {
    const cacheKey = reason === undefined ? name : `${name}\u0000${reason}`;
    let r = resolved.get(cacheKey);
    if (r) return r;
    const parsed = parseSeriesKey(name);
    const labels = reason ? { ...parsed.labels, reason } : parsed.labels;
    const f = family(parsed.name, Object.keys(labels));
    widen(registry, f, Object.keys(labels));
    r = { family: f, key: seriesKey(parsed.name, labels, f.labelNames), labels };
    if (resolved.size < 10_000) resolved.set(cacheKey, r);
    return r;
  };

  const total = (f: Family): number => {
    let sum = 0;
    for (const s of f.series.values()) sum += s.value;
    return sum;
  };

  return {
    registry,
    inc(name, by = 1, reason) {
      if (!Number.isFinite(by) || by < 0) throw new RangeError(`counter ${name}: cannot add ${by}`);
      const r = resolve(name, reason || undefined);
      const s = r.family.series.get(r.key);
      if (s) s.value += by;
      else r.family.series.set(r.key, { labels: r.labels, value: by });
    },
    get(name) {
      const parsed = parseSeriesKey(name);
      const f = families.get(registry)?.get(parsed.name);
      if (!f) return 0;
      if (Object.keys(parsed.labels).length === 0) return total(f);
      return f.series.get(seriesKey(parsed.name, parsed.labels, f.labelNames))?.value ?? 0;
    },
    snapshot() {
      const out: Record<string, number> = {};
      for (const f of known.values()) {
        if (f.labelNames.length > 0) out[f.name] = total(f);
        for (const [key, s] of f.series) if (key !== f.name || f.labelNames.length === 0) out[key] = s.value;
      }
      return out;
    },
  };
}
