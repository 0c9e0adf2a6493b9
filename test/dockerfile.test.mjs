/**
 * Offline check of the repository's one Dockerfile: no Docker here, so each service's image is
 * built on paper.
 *
 * simulate() walks the Dockerfile for one SERVICE the way the builder does: global and per-stage
 * ARGs, stages built from stages, WORKDIR, ENV, USER, EXPOSE, HEALTHCHECK, CMD, and a listing of
 * the files each stage holds. COPY takes its sources from the build context (the repository less
 * .dockerignore) or from an earlier stage's listing; a source that is not there is a problem. RUN
 * steps are the ones this file knows, each with what it needs and what it produces; any other is a
 * problem, so a new step has to be taught here:
 *   - `turbo prune @pitwall/<svc> --docker`: really run (the repository's turbo) on a copy of the
 *     files the stage holds, so its output is the real out/json, out/full and lockfile;
 *   - `npm install`: needs the manifests of every workspace in package.json and a lockfile, uses
 *     scripts/pitwall setup's flags (never `npm ci`), never brings @tensorflow/tfjs-node; produces
 *     node_modules (production only with --omit=dev);
 *   - `turbo run build --filter=@pitwall/<svc>`: needs a dev install and each tsconfig.json's
 *     `extends`; produces, for the service and the workspaces it depends on, what tsc emits from
 *     their tsconfig.json (include, rootDir, outDir): src/main.ts -> dist/src/main.js;
 *   - `rm -rf` and `cp -R --parents` of those paths, and steps without output (test, echo, mkdir).
 * Then rules on the resulting image (imageProblems): runs dist/src/main.js as node from
 * /app/services/<svc>, production dependencies, every workspace it uses with its package.json
 * entry points, the directories its code reads next to itself (schemas/, the console's public/),
 * files not given to the service user, and a HEALTHCHECK on the port its config defaults to. And on
 * the rest of the repository: docker-compose.yml builds every service from this Dockerfile with a
 * SERVICE that is a workspace, and the commands it and k8s/base run exist in the image; no
 * per-service Dockerfile is left or referenced. Each rule returns problems, and the tests at the end
 * break a copy (of the Dockerfile, .dockerignore, compose, a package.json) to see it fail.
 *
 * Run: node --test test/dockerfile.test.mjs (after npm install: it uses node_modules/.bin/turbo).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TURBO = path.join(REPO, 'node_modules', '.bin', 'turbo');
const read = (rel) => fs.readFileSync(path.join(REPO, rel), 'utf8');
const posix = path.posix;

/** Directories a service's code reads that are mounted, not shipped: the variable that moves them. */
const RUNTIME_MOUNTS = { models: 'MODEL_DIR' };

// ------------------------------------------------------------------ build context

/** .dockerignore as [regex, negated] pairs; a pattern also excludes everything below a match. */
export function parseDockerignore(text) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const p = posix.normalize(l.replace(/^!/, '').replace(/^\/+/, '')).replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < p.length; i++) {
        if (p.startsWith('**/', i)) ((re += '(?:.*/)?'), (i += 2));
        else if (p.startsWith('**', i)) ((re += '.*'), (i += 1));
        else if (p[i] === '*') re += '[^/]*';
        else if (p[i] === '?') re += '[^/]';
        else re += p[i].replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return [new RegExp(`^${re}(?:/.*)?$`), negated];
    });
}

const ignored = (patterns, rel) => patterns.reduce((out, [re, neg]) => (re.test(rel) ? !neg : out), false);

/**
 * The build context: every file of the repository .dockerignore lets through, rel -> entry
 * ({ real } on disk or { content }). `overrides` replaces or adds files (content, or null: gone).
 */
export function buildContext({ dockerignore, overrides = {} } = {}) {
  const ignoreText = dockerignore ?? overrides['.dockerignore'] ?? read('.dockerignore');
  const patterns = parseDockerignore(ignoreText);
  const entries = new Map();
  const walk = (dir) => {
    for (const d of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${d.name}` : d.name;
      if (ignored(patterns, rel)) continue;
      if (d.isDirectory()) walk(rel);
      else entries.set(rel, { real: path.join(REPO, rel) });
    }
  };
  walk('');
  for (const [rel, content] of Object.entries({ ...overrides, '.dockerignore': ignoreText })) {
    if (content === null) entries.delete(rel);
    else if (!ignored(patterns, rel) || rel === '.dockerignore') entries.set(rel, { content });
  }
  return { entries, patterns };
}

const entryText = (e) => e.content ?? fs.readFileSync(e.real, 'utf8');

// ------------------------------------------------------------------ turbo prune, for real

/** At most two prunes at a time (the machine is shared). */
const limit = (() => {
  let active = 0;
  const waiting = [];
  return async (fn) => {
    if (active >= 2) await new Promise((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
})();

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'pitwall-dockerfile-'));
process.on('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));
const pruneCache = new Map();

function listFiles(root, dir = '') {
  const out = [];
  for (const d of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...listFiles(root, rel));
    else out.push(rel);
  }
  return out;
}

/**
 * Runs `turbo prune <args>` on the files `files` (rel -> entry) written to a directory of their
 * own, the way the prune stage holds them; resolves to the output's files (rel -> { real }) or
 * rejects with turbo's message. Cached by files and arguments.
 */
function runPrune(files, args) {
  const hash = createHash('sha256');
  for (const [rel, e] of [...files].sort(([a], [b]) => a.localeCompare(b))) hash.update(`${rel}\0${e.real ?? ''}\0${e.content ?? ''}\0`);
  const filesKey = hash.digest('hex').slice(0, 16);
  const key = `${filesKey}-${createHash('sha256').update(args.join(' ')).digest('hex').slice(0, 8)}`;
  if (!pruneCache.has(key)) {
    pruneCache.set(
      key,
      limit(async () => {
        // One copy per set of files, shared by the prunes of every service (written synchronously).
        const ctx = path.join(TMP, `ctx-${filesKey}`);
        const out = path.join(TMP, `out-${key}`);
        if (!fs.existsSync(ctx))
          for (const [rel, e] of files) {
            fs.mkdirSync(path.dirname(path.join(ctx, rel)), { recursive: true });
            if (e.content !== undefined) fs.writeFileSync(path.join(ctx, rel), e.content);
            else fs.copyFileSync(e.real, path.join(ctx, rel));
          }
        try {
          await promisify(execFile)(TURBO, ['prune', ...args, '--out-dir', out], {
            cwd: ctx,
            env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', TURBO_NO_UPDATE_NOTIFIER: '1' },
          });
        } catch (err) {
          throw new Error(`turbo prune ${args.join(' ')} failed: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' ')}`, { cause: err });
        }
        return new Map(listFiles(out).map((rel) => [rel, { real: path.join(out, rel) }]));
      }),
    );
  }
  return pruneCache.get(key);
}

// ------------------------------------------------------------------ Dockerfile parsing

/** Instructions with continuation lines joined and comments dropped: { op, rest, line }. */
export function parseDockerfile(text) {
  const out = [];
  let buf = null;
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) || (buf === null && !raw.trim())) return;
    if (buf === null) ((buf = ''), (start = i + 1));
    const continued = /\\\s*$/.test(raw);
    buf += continued ? `${raw.replace(/\\\s*$/, '')} ` : raw;
    if (continued) return;
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(buf);
    out.push({ op: m[1].toUpperCase(), rest: m[2].trim(), line: start });
    buf = null;
  });
  return out;
}

/** ${NAME}, ${NAME:-default} and $NAME from vars; unset is empty, as in the builder and the shell. */
const substitute = (s, vars) => s.replace(/\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)/g, (_, a, def, b) => vars[a ?? b] ?? def ?? '');

/** Shell words: quotes removed, no expansion. */
function words(s) {
  const out = [];
  for (const m of s.matchAll(/(?:[^\s'"]+|'[^']*'|"(?:\\.|[^"\\])*")+/g)) out.push(m[0].replace(/'([^']*)'|"((?:\\.|[^"\\])*)"/g, '$1$2'));
  return out;
}

/** key=value pairs of ENV (or the old `ENV key value`). */
function envPairs(rest) {
  const w = words(rest);
  if (w.length && !w[0].includes('=')) return [[w[0], w.slice(1).join(' ')]];
  return w.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]);
}

// ------------------------------------------------------------------ simulation

const under = (files, p) => [...files.keys()].filter((k) => k === p || k.startsWith(`${p}/`));
const globRegex = (absGlob) => new RegExp(`^${absGlob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(?=/|$)`);
/** Paths (files or directories) in files matching an absolute glob. */
const expand = (files, absGlob) => [...new Set([...files.keys()].map((k) => globRegex(absGlob).exec(k)?.[0]).filter(Boolean))];

/** The flags scripts/pitwall setup installs with. */
export function setupInstallFlags(script = read('scripts/pitwall')) {
  const m = /^\s*npm install((?:\s+--[\w=-]+)+)\s*$/m.exec(script);
  if (!m) throw new Error('scripts/pitwall: no `npm install --flags` line');
  return m[1].trim().split(/\s+/);
}

const TFJS_NODE = /^@tensorflow\/tfjs-node(?:-gpu)?$/;

/**
 * Builds the image for `service` on paper. Resolves to { image, stages, problems }: image is the
 * final stage's state ({ files: Map(abs path -> entry), env, user, workdir, cmd, healthcheck,
 * expose, chown }), problems what the builder would fail on or produce wrongly.
 */
export async function simulate(dockerfile, { service, context = defaultContext(), setupFlags = setupInstallFlags() }) {
  const problems = [];
  const buildArgs = { SERVICE: service };
  const globalArgs = {};
  const stages = [];
  let st = null;
  const at = (ins) => `line ${ins.line} ${ins.op} ${ins.rest.length > 70 ? `${ins.rest.slice(0, 67)}...` : ins.rest}`;
  for (const ins of parseDockerfile(dockerfile)) {
    const vars = st ? { ...st.args, ...st.env } : {};
    const problem = (msg) => problems.push(`${at(ins)}: ${msg}`);
    if (ins.op === 'ARG') {
      const [, name, def] = /^(\w+)(?:=(.*))?$/.exec(ins.rest);
      const value = buildArgs[name] ?? (def !== undefined ? substitute(def, vars) : globalArgs[name]);
      if (st) st.args[name] = value;
      else globalArgs[name] = value;
      continue;
    }
    if (ins.op === 'FROM') {
      const [image, as, name] = words(substitute(ins.rest, globalArgs));
      const from = stages.find((s) => s.name === image);
      if (!from && /^service-/.test(image)) problem(`no stage ${image}: SERVICE=${service} has no "service-${service}" stage`);
      st = from
        ? { ...structuredClone({ ...from, files: null }), files: new Map(from.files), name: undefined, args: {} }
        : { files: new Map(), env: {}, args: {}, tools: [], base: image, user: 'root', workdir: '/', expose: [], chown: [] };
      st.name = as?.toUpperCase() === 'AS' ? name : undefined;
      st.line = ins.line;
      stages.push(st);
      continue;
    }
    if (!st) {
      problem('before the first FROM');
      continue;
    }
    const rest = substitute(ins.rest, vars);
    const abs = (p) => posix.resolve(st.workdir, p);
    switch (ins.op) {
      case 'WORKDIR':
        st.workdir = abs(rest);
        break;
      case 'ENV':
        for (const [k, v] of envPairs(rest)) st.env[k] = v;
        break;
      case 'USER':
        st.user = rest;
        break;
      case 'EXPOSE':
        st.expose.push(...words(rest).map((p) => Number(p.split('/')[0])));
        break;
      case 'CMD':
        st.cmd = ins.rest.startsWith('[') ? JSON.parse(ins.rest) : ['/bin/sh', '-c', ins.rest];
        break;
      case 'HEALTHCHECK':
        st.healthcheck = ins.rest;
        break;
      case 'COPY':
      case 'ADD':
        copy(st, ins, rest, { stages, context, problem, abs });
        break;
      case 'RUN':
        await run(st, rest, { problem, abs, context, service, setupFlags });
        break;
      default:
        problem('instruction the check does not know');
    }
  }
  if (!st) problems.push('no FROM');
  return { image: st, stages, problems };
}

function copy(st, ins, rest, { stages, context, problem, abs }) {
  const w = ins.rest.startsWith('[') ? JSON.parse(rest) : words(rest);
  const flags = w.filter((x) => x.startsWith('--'));
  const args = w.filter((x) => !x.startsWith('--'));
  for (const f of flags) {
    if (/^--(chown|chmod)=/.test(f)) st.chown.push(`${f} (line ${ins.line})`);
    else if (!/^--(from|link)(=|$)/.test(f)) problem(`flag ${f} the check does not know`);
  }
  const fromName = flags.find((f) => f.startsWith('--from='))?.slice(7);
  const dest = args.pop();
  if (!dest || !args.length) return problem('needs a source and a destination');
  let src;
  if (fromName) {
    const from = stages.find((s) => s.name === fromName);
    if (!from || from === st) return problem(`--from=${fromName} is no earlier stage`);
    src = { files: from.files, label: `stage ${fromName}`, resolve: (p) => posix.resolve('/', p) };
  } else {
    const files = new Map([...context.entries].map(([rel, e]) => [`/${rel}`, e]));
    src = { files, label: 'the build context (less .dockerignore)', resolve: (p) => posix.resolve('/', p) };
  }
  const destAbs = abs(dest);
  const destIsDir = dest.endsWith('/') || args.length > 1;
  for (const a of args) {
    if (/[*?[]/.test(a)) {
      problem(`wildcard source ${a}: the check does not expand wildcards`);
      continue;
    }
    const s = src.resolve(a);
    const hits = s === '/' ? [...src.files.keys()] : under(src.files, s);
    if (!hits.length) {
      problem(`source ${a} is not in ${src.label}`);
      continue;
    }
    const single = hits.length === 1 && hits[0] === s && !src.files.get(s).dir;
    for (const k of hits) {
      const target = single ? (destIsDir ? posix.join(destAbs, posix.basename(s)) : destAbs) : posix.join(destAbs, s === '/' ? k : k.slice(s.length));
      for (const old of under(st.files, target)) st.files.delete(old);
      st.files.set(target, src.files.get(k));
    }
  }
}

/** The workspaces a package.json lists (exact paths or dir/* patterns), as directories. */
function workspaceDirs(st, root) {
  const pkg = st.files.get(posix.join(root, 'package.json'));
  if (!pkg) return [];
  return (JSON.parse(entryText(pkg)).workspaces ?? []).flatMap((w) =>
    w.includes('*') ? expand(st.files, posix.join(root, w)).filter((d) => st.files.has(`${d}/package.json`)) : [posix.join(root, w)],
  );
}

async function run(st, text, ctx) {
  for (const part of text.split(/\s+&&\s+/)) {
    const w = words(part);
    while (w.length && /^\w+=/.test(w[0])) w.shift(); // VAR=value prefixes
    const cmd = w.join(' ');
    if (/^(test|echo|mkdir|true)\b/.test(cmd) || /^npm cache clean\b/.test(cmd)) continue;
    if (/^npm (install|i|ci)\b/.test(cmd) && w.includes('-g')) globalInstall(st, part, w, ctx);
    else if (/^\S*turbo prune\b/.test(cmd)) await prune(st, w, ctx);
    else if (/^npm (install|i|ci)\b/.test(cmd)) install(st, w, ctx);
    else if (/^rm -rf\b/.test(cmd)) for (const g of w.slice(2)) for (const p of expand(st.files, ctx.abs(g))) for (const k of under(st.files, p)) st.files.delete(k);
    else if (/^\S*turbo run build\b/.test(cmd)) build(st, w, ctx);
    else if (/^cp -R --parents\b/.test(cmd)) cpParents(st, w, ctx);
    else ctx.problem(`RUN step "${cmd}": the check does not know what it needs and produces (teach test/dockerfile.test.mjs)`);
  }
}

function lockfileOf(st, dir) {
  const e = st.files.get(posix.join(dir, 'package-lock.json'));
  return e && JSON.parse(entryText(e));
}

function globalInstall(st, part, w, { problem, abs }) {
  const pkgs = w.slice(2).filter((x) => !x.startsWith('-'));
  if (pkgs.length !== 1 || !pkgs[0].startsWith('turbo@')) return problem(`npm install -g ${pkgs.join(' ')}: only turbo is installed globally (to prune)`);
  const lock = lockfileOf(st, abs('.'));
  const locked = lock?.packages?.['node_modules/turbo']?.version;
  if (!locked) return problem(`turbo's version comes from the lockfile, and there is no package-lock.json with node_modules/turbo in ${abs('.')}`);
  const fromLock = /turbo@\$\(node -p "require\('\.\/package-lock\.json'\)\.packages\['node_modules\/turbo'\]\.version"\)/.test(part);
  if (!fromLock && pkgs[0] !== `turbo@${locked}`) return problem(`${pkgs[0]} is not the locked turbo ${locked}`);
  st.tools.push('turbo');
}

async function prune(st, w, { problem, abs, service }) {
  const i = w.indexOf('prune');
  const args = w.slice(i + 1);
  const outIdx = args.indexOf('--out-dir');
  const outDir = outIdx >= 0 ? abs(args[outIdx + 1]) : abs('out');
  const pruneArgs = args.filter((_, j) => outIdx < 0 || (j !== outIdx && j !== outIdx + 1));
  if (!st.tools.includes('turbo') && !st.files.get(abs('node_modules'))?.dev) return problem('turbo is not installed in this stage');
  if (pruneArgs[0] !== `@pitwall/${service}`) problem(`prunes for "${pruneArgs[0]}", not @pitwall/${service}`);
  if (!pruneArgs.includes('--docker')) problem('prune without --docker: no out/json to install from before the sources');
  const root = abs('.');
  const files = new Map(
    under(st.files, root)
      .filter((k) => !st.files.get(k).dir)
      .map((k) => [posix.relative(root, k), st.files.get(k)]),
  );
  try {
    for (const [rel, e] of await runPrune(files, pruneArgs)) st.files.set(posix.join(outDir, rel), e);
  } catch (err) {
    problem(err.message);
  }
}

function install(st, w, { problem, abs, setupFlags }) {
  const dir = abs('.');
  if (w[1] === 'ci') problem('npm ci: install as scripts/pitwall setup does, with npm install (see there why)');
  for (const f of setupFlags) if (!w.includes(f)) problem(`npm install without ${f} (scripts/pitwall setup installs with ${setupFlags.join(' ')})`);
  const lock = lockfileOf(st, dir);
  if (!st.files.has(posix.join(dir, 'package.json'))) return problem(`no package.json in ${dir}`);
  if (!lock) problem(`no package-lock.json in ${dir}: the install would not follow the lockfile`);
  const manifests = [posix.join(dir, 'package.json')];
  for (const ws of workspaceDirs(st, dir)) {
    if (st.files.has(`${ws}/package.json`)) manifests.push(`${ws}/package.json`);
    else problem(`workspace ${posix.relative(dir, ws)} has no package.json here`);
  }
  for (const m of manifests) {
    const pkg = JSON.parse(entryText(st.files.get(m)));
    for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'])
      for (const name of Object.keys(pkg[field] ?? {})) if (TFJS_NODE.test(name)) problem(`${posix.relative(dir, m)} brings ${name} (it downloads libtensorflow: never install it)`);
  }
  for (const k of Object.keys(lock?.packages ?? {})) if (TFJS_NODE.test(k.replace(/^.*node_modules\//, ''))) problem(`the lockfile installs ${k} (it downloads libtensorflow: never install it)`);
  const omitDev = w.includes('--omit=dev');
  st.files.set(posix.join(dir, 'node_modules'), { dir: true, produced: 'npm install', dev: !omitDev, workspaces: manifests.length - 1 });
}

/** A tsconfig.json `include` pattern as a regex on paths relative to its directory. */
const includeRegex = (p) =>
  new RegExp(
    `^${p
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\//g, '\0')
      .replace(/\*/g, '[^/]*')
      .replace(/\0/g, '(?:.*/)?')}$`,
  );

/** A tsconfig's compilerOptions, its `extends` chain (files of the stage) merged in. */
function compilerOptions(st, file) {
  const e = st.files.get(file);
  if (!e) return {};
  const tsconfig = JSON.parse(entryText(e));
  const parent = tsconfig.extends?.startsWith('.') ? compilerOptions(st, posix.resolve(posix.dirname(file), tsconfig.extends)) : {};
  return { ...parent, ...tsconfig.compilerOptions };
}

function build(st, w, { problem, abs, service }) {
  const root = abs('.');
  const nm = st.files.get(posix.join(root, 'node_modules'));
  if (!nm?.dev) return problem('no dev install in this stage (npm install without --omit=dev): no turbo, no tsc');
  const filter = w.find((x) => x.startsWith('--filter='))?.slice(9);
  if (filter !== `@pitwall/${service}`) problem(`builds --filter=${filter ?? '(none)'}, not @pitwall/${service}`);
  const byName = new Map();
  for (const dir of workspaceDirs(st, root)) {
    const e = st.files.get(`${dir}/package.json`);
    if (e) byName.set(JSON.parse(entryText(e)).name, { dir, pkg: JSON.parse(entryText(e)) });
  }
  if (!byName.has(filter)) return problem(`turbo: no workspace named ${filter} in ${root}`);
  const todo = [filter];
  const done = new Set();
  while (todo.length) {
    const name = todo.pop();
    if (done.has(name)) continue;
    done.add(name);
    const { dir, pkg } = byName.get(name);
    todo.push(...Object.keys(pkg.dependencies ?? {}).filter((d) => byName.has(d)));
    if (pkg.scripts?.build !== 'tsc -p tsconfig.json') {
      problem(`${name}: build script "${pkg.scripts?.build}" is not "tsc -p tsconfig.json" (teach the check what it emits)`);
      continue;
    }
    const tsconfigEntry = st.files.get(`${dir}/tsconfig.json`);
    if (!tsconfigEntry) {
      problem(`${name}: no ${dir}/tsconfig.json`);
      continue;
    }
    const tsconfig = JSON.parse(entryText(tsconfigEntry));
    if (tsconfig.extends?.startsWith('.') && !st.files.has(posix.resolve(dir, tsconfig.extends)))
      problem(`${name}: tsconfig.json extends ${tsconfig.extends}, and ${posix.resolve(dir, tsconfig.extends)} is not in this stage`);
    const { rootDir, outDir, declaration, sourceMap } = compilerOptions(st, `${dir}/tsconfig.json`);
    if (!rootDir || !outDir) {
      problem(`${name}: tsconfig.json without rootDir and outDir: where tsc emits is not fixed`);
      continue;
    }
    const includes = (tsconfig.include ?? []).map(includeRegex);
    for (const k of under(st.files, dir)) {
      const rel = posix.relative(dir, k);
      if (!rel.endsWith('.ts') || rel.endsWith('.d.ts') || rel.startsWith('node_modules/') || !includes.some((re) => re.test(rel))) continue;
      const out = posix.join(dir, outDir, posix.relative(rootDir, rel)).replace(/\.ts$/, '');
      for (const ext of ['.js', ...(sourceMap ? ['.js.map'] : []), ...(declaration ? ['.d.ts'] : [])]) st.files.set(out + ext, { produced: `tsc (${name})`, from: k });
    }
  }
}

function cpParents(st, w, { problem, abs }) {
  const args = w.slice(3);
  const dest = abs(args.pop());
  for (const g of args) {
    const hits = expand(st.files, abs(g));
    if (!hits.length) problem(`cp: ${g} matches nothing`);
    for (const p of hits) for (const k of under(st.files, p)) st.files.set(posix.join(dest, posix.relative(abs('.'), k)), st.files.get(k));
  }
}

// ------------------------------------------------------------------ rules on an image

/** The workspaces of the repository: name -> { dir (services/x), pkg }. */
function repoWorkspaces() {
  const out = new Map();
  for (const d of fs.readdirSync(path.join(REPO, 'services'))) {
    const f = path.join(REPO, 'services', d, 'package.json');
    if (fs.existsSync(f)) out.set(JSON.parse(fs.readFileSync(f, 'utf8')).name, { dir: `services/${d}`, pkg: JSON.parse(fs.readFileSync(f, 'utf8')) });
  }
  return out;
}

/** The service's workspace and every workspace it depends on, transitively. */
function closure(service, workspaces = repoWorkspaces()) {
  const out = new Set();
  const todo = [`@pitwall/${service}`];
  while (todo.length) {
    const n = todo.pop();
    if (out.has(n) || !workspaces.has(n)) continue;
    out.add(n);
    todo.push(...Object.keys(workspaces.get(n).pkg.dependencies ?? {}));
  }
  return [...out].map((n) => workspaces.get(n));
}

/** Config defaults of a service: variable -> default, from `c.int('VAR', default` in src/config.ts. */
export function configDefaults(service) {
  const out = {};
  const f = path.join(REPO, 'services', service, 'src', 'config.ts');
  if (fs.existsSync(f)) for (const m of fs.readFileSync(f, 'utf8').matchAll(/\bc\.int\(\s*'(\w+)',\s*([\d_]+)/g)) out[m[1]] = Number(m[2].replace(/_/g, ''));
  return out;
}

/**
 * Directories the code of a workspace reads next to itself: new URL('<dir>/', import.meta.url), and
 * repoDir(import.meta.url, '<dir>') (common/paths.ts: <dir> below the root, /app in the image).
 */
function dirsReadAtRuntime(ws) {
  const out = [];
  const walk = (rel) => {
    for (const d of fs.readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
      const r = `${rel}/${d.name}`;
      if (d.isDirectory()) walk(r);
      else if (r.endsWith('.ts'))
        for (const m of fs.readFileSync(path.join(REPO, r), 'utf8').matchAll(/new URL\('([^']+\/)', import\.meta\.url\)/g)) {
          // The compiled file is <ws>/dist/src/...js: resolve from there, as node does.
          const compiled = posix.join(ws.dir, 'dist', posix.relative(ws.dir, r));
          out.push({ from: r, dir: posix.normalize(posix.join(posix.dirname(compiled), m[1])).replace(/\/$/, '') });
        }
      if (r.endsWith('.ts')) for (const m of fs.readFileSync(path.join(REPO, r), 'utf8').matchAll(/\brepoDir\(import\.meta\.url, '([^']+)'\)/g)) out.push({ from: r, dir: m[1] });
    }
  };
  walk(`${ws.dir}/src`);
  return out;
}

/** What is wrong with the image of `service` (simulate()'s image), given the build context. */
export function imageProblems(service, image, context) {
  const problems = [];
  const p = (msg) => problems.push(`${service}: ${msg}`);
  const workdir = `/app/services/${service}`;
  if (image.user !== 'node') p(`runs as ${image.user}, not node`);
  if (image.workdir !== workdir) p(`WORKDIR is ${image.workdir}, not ${workdir}`);
  if (JSON.stringify(image.cmd) !== JSON.stringify(['node', 'dist/src/main.js'])) p(`CMD is ${JSON.stringify(image.cmd)}, not ["node","dist/src/main.js"]`);
  const main = posix.join(workdir, 'dist/src/main.js');
  const mainEntry = image.files.get(main);
  if (!mainEntry?.produced) p(`${main} is not in the image (compiled from services/${service}/src/main.ts)`);
  else if (!mainEntry.from.endsWith(`/services/${service}/src/main.ts`)) p(`${main} is compiled from ${mainEntry.from}, not services/${service}/src/main.ts`);
  if (image.env.NODE_ENV !== 'production') p(`NODE_ENV is ${image.env.NODE_ENV}, not production`);
  const nm = image.files.get('/app/node_modules');
  if (!nm) p('no /app/node_modules');
  else if (nm.dev) p('/app/node_modules holds dev dependencies (installed without --omit=dev)');
  if (image.chown.length) p(`files given away (${image.chown.join(', ')}): they stay root's, read-only to the service`);
  for (const ws of closure(service)) {
    const dir = `/app/${ws.dir}`;
    if (!image.files.has(`${dir}/package.json`)) p(`${ws.pkg.name}: no ${dir}/package.json (node resolves the workspace through it)`);
    const values = (x) => (typeof x === 'string' ? [x] : Object.values(x ?? {}).flatMap(values));
    const targets = [ws.pkg.main, ...values(ws.pkg.exports)].filter(Boolean);
    for (const t of new Set(targets)) if (!image.files.has(posix.join(dir, t))) p(`${ws.pkg.name}: entry point ${posix.join(dir, t)} is not in the image`);
    for (const { from, dir: read } of dirsReadAtRuntime(ws)) {
      if (ignored(context.patterns, read)) {
        const variable = RUNTIME_MOUNTS[read];
        if (!variable) p(`${from} reads ${read}/, which .dockerignore keeps out of the image`);
        else if (!image.env[variable]?.startsWith('/')) p(`${from} reads ${read}/ (mounted, not shipped): the image must set ${variable}`);
        continue;
      }
      const files = [...context.entries.keys()].filter((k) => k.startsWith(`${read}/`));
      if (!files.length) p(`${from} reads ${read}/, which is not in the repository`);
      const missing = files.filter((k) => !image.files.has(`/app/${k}`));
      if (missing.length) p(`${from} reads ${read}/: /app/${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} not in the image`);
    }
  }
  problems.push(...healthProblems(service, image));
  return problems;
}

/** The HEALTHCHECK reads the variable that moves the health port, defaulting to the config's default. */
export function healthProblems(service, image) {
  const problems = [];
  const p = (msg) => problems.push(`${service}: ${msg}`);
  const hc = image.healthcheck;
  if (!hc) return [`${service}: no HEALTHCHECK`];
  const m = /process\.env\.(\w+) \|\| '(\d+)'\) \+ '\/healthz'/.exec(hc);
  if (!m) return [`${service}: HEALTHCHECK does not fetch /healthz on process.env.<PORT variable> || '<default>'`];
  const [, variable, port] = m;
  const defaults = configDefaults(service);
  if (!(variable in defaults)) p(`HEALTHCHECK reads ${variable}, which services/${service}/src/config.ts does not read`);
  else if (defaults[variable] !== Number(port)) p(`HEALTHCHECK defaults ${variable} to ${port}, the service to ${defaults[variable]}`);
  if (image.env[variable] !== port) p(`ENV ${variable} is ${image.env[variable]}, the HEALTHCHECK's default ${port}`);
  if (!image.expose.includes(Number(port))) p(`port ${port} is not EXPOSEd`);
  return problems;
}

// ------------------------------------------------------------------ rules on the rest of the repository

/** The service names the Dockerfile has a stage for (service-<name>). */
export const serviceStages = (dockerfile) =>
  parseDockerfile(dockerfile)
    .filter((i) => i.op === 'FROM')
    .map((i) => /\bAS\s+service-([\w-]+)$/i.exec(i.rest)?.[1])
    .filter(Boolean);

/**
 * docker-compose.yml builds each Pitwall image from this Dockerfile, with SERVICE a workspace that
 * has a stage, and tags it pitwall/<SERVICE>; every stage is built by some compose service.
 */
export function composeProblems(compose, dockerfile, workspaces = repoWorkspaces()) {
  const problems = [];
  const stages = serviceStages(dockerfile);
  const built = new Set();
  for (const [name, svc] of Object.entries(compose.services ?? {})) {
    if (!svc.build && !String(svc.image ?? '').startsWith('pitwall/')) continue;
    const p = (msg) => problems.push(`compose ${name}: ${msg}`);
    const b = typeof svc.build === 'object' ? svc.build : { context: svc.build };
    if (b.context !== '.') p(`build context is ${b.context}, not . (the repository root)`);
    if ((b.dockerfile ?? 'Dockerfile') !== 'Dockerfile') p(`builds ${b.dockerfile}, not the one Dockerfile`);
    const arg = b.args?.SERVICE;
    if (!arg) {
      p('no build arg SERVICE');
      continue;
    }
    if (!workspaces.has(`@pitwall/${arg}`)) p(`SERVICE ${arg} is no workspace (services/${arg}/package.json, @pitwall/${arg})`);
    if (!stages.includes(arg)) p(`SERVICE ${arg} has no service-${arg} stage in the Dockerfile`);
    if (!String(svc.image ?? '').startsWith(`pitwall/${arg}:`)) p(`image ${svc.image} is not pitwall/${arg}:<tag>, what it builds`);
    built.add(arg);
  }
  for (const s of stages) if (!built.has(s)) problems.push(`compose: no service builds SERVICE=${s}`);
  return problems;
}

/** Absolute /app/... files that compose and k8s/base commands run, with the image they run in. */
export function commandsRun(compose, k8sDocs) {
  const out = [];
  const files = (cmd) => (Array.isArray(cmd) ? cmd : []).filter((a) => typeof a === 'string' && /^\/app\/.+\.js$/.test(a));
  for (const [name, svc] of Object.entries(compose.services ?? {})) {
    const svcName = /^pitwall\/([\w-]+):/.exec(svc.image ?? '')?.[1];
    if (svcName) for (const f of files(svc.command)) out.push({ where: `compose ${name}`, service: svcName, file: f });
  }
  for (const doc of k8sDocs) {
    const spec = doc?.spec?.template?.spec ?? doc?.spec?.jobTemplate?.spec?.template?.spec;
    for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
      const svcName = /^pitwall\/([\w-]+):/.exec(c.image ?? '')?.[1];
      if (svcName) for (const f of [...files(c.command), ...files(c.args)]) out.push({ where: `k8s ${doc.kind} ${doc.metadata?.name}`, service: svcName, file: f });
    }
  }
  return out;
}

/** Per-service Dockerfiles are gone, and nothing points at one any more. */
export function leftoverProblems(context) {
  const problems = [];
  for (const rel of context.entries.keys()) {
    if (/^services\/[^/]+\/Dockerfile$/.test(rel)) problems.push(`${rel} exists: the repository root's Dockerfile builds every service`);
    if (rel === 'test/dockerfile.test.mjs' || !/\.(md|ya?ml|json|mjs|ts|sh)$|(^|\/)(\.dockerignore|Dockerfile|pitwall)$/.test(rel)) continue;
    const text = entryText(context.entries.get(rel));
    for (const m of text.matchAll(/services\/[\w<>${}-]+\/Dockerfile/g)) problems.push(`${rel} refers to ${m[0]}`);
  }
  return problems;
}

// ------------------------------------------------------------------ the repository's files

let ctxMemo;
function defaultContext() {
  ctxMemo ??= buildContext();
  return ctxMemo;
}
const DOCKERFILE = read('Dockerfile');
const COMPOSE = parseYaml(read('docker-compose.yml'), { merge: true });
const K8S = fs
  .readdirSync(path.join(REPO, 'k8s', 'base'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(read(`k8s/base/${f}`), { version: '1.1' }).map((d) => d.toJS()));
const SERVICES = serviceStages(DOCKERFILE);

// Start every service's build now, two prunes at a time; the tests below await their own.
const images = new Map(SERVICES.map((s) => [s, simulate(DOCKERFILE, { service: s })]));
for (const p of images.values()) p.catch(() => {});

// ------------------------------------------------------------------ tests: the repository

test('the Dockerfile has a stage for each service with a main', () => {
  const withMain = [...repoWorkspaces().values()].filter((ws) => fs.existsSync(path.join(REPO, ws.dir, 'src', 'main.ts'))).map((ws) => ws.dir.slice(9));
  // loadgen is a tool run from a checkout (npm run loadtest), not a deployed service.
  assert.deepEqual([...SERVICES].sort(), withMain.filter((s) => s !== 'loadgen').sort());
});

for (const service of SERVICES) {
  test(`${service}: the image builds on paper and holds what the service needs`, async () => {
    const { image, problems } = await images.get(service);
    assert.deepEqual([...problems, ...imageProblems(service, image, defaultContext())], []);
    // The pruned set is exactly the service and its workspace dependencies: no other manifest.
    const shipped = [...image.files.keys()].filter((k) => /^\/app\/services\/[^/]+\/package\.json$/.test(k)).map((k) => k.split('/')[3]);
    assert.deepEqual(
      shipped.sort(),
      closure(service)
        .map((ws) => ws.dir.slice(9))
        .sort(),
    );
  });
}

test('docker-compose.yml builds every service from the Dockerfile with SERVICE', () => {
  assert.deepEqual(composeProblems(COMPOSE, DOCKERFILE), []);
  assert.equal(COMPOSE.services['schemas-deploy'].build.args.SERVICE, 'ingest');
});

test('the commands compose and k8s/base run are files of their images', async () => {
  const runs = commandsRun(COMPOSE, K8S);
  // At least the registry's deploy step, in both.
  assert.deepEqual(new Set(runs.map((r) => r.where)), new Set(['compose schemas-deploy', 'k8s Job schemas-deploy']));
  for (const r of runs) {
    assert.ok(images.has(r.service), `${r.where}: pitwall/${r.service} is not built by the Dockerfile`);
    const { image } = await images.get(r.service);
    assert.ok(image.files.has(r.file), `${r.where}: ${r.file} is not in pitwall/${r.service}`);
  }
});

test('no per-service Dockerfile is left, none is referred to', () => {
  assert.deepEqual(leftoverProblems(defaultContext()), []);
});

test('the system tests package runs this check', () => {
  assert.match(JSON.parse(read('test/package.json')).scripts.test, /\bdockerfile\.test\.mjs\b/);
});

// ------------------------------------------------------------------ tests: the checks can fail

/** Problems of the Dockerfile text `text` for `service`, from the build and the image rules. */
async function problemsOf(text, service, context = defaultContext()) {
  const { image, problems } = await simulate(text, { service, context });
  return [...problems, ...imageProblems(service, image, context)];
}

function mutate(text, from, to) {
  assert.ok(text.includes(from), `the Dockerfile no longer contains ${JSON.stringify(from)}: update this test`);
  return text.replace(from, to);
}

test('rules: a COPY of something not in the pruned output, the context or a stage fails', async () => {
  const cases = [
    [
      'out/json misspelt',
      '--from=prune /out/json/ /out/package-lock.json ./\nRUN npm install --omit=dev',
      '--from=prune /out/jsn/ /out/package-lock.json ./\nRUN npm install --omit=dev',
      /source \/out\/jsn\/ is not in stage prune/,
    ],
    [
      'lockfile where turbo does not put it',
      'COPY --from=prune /out/json/ /out/package-lock.json ./\nRUN npm install --omit=dev',
      'COPY --from=prune /out/json/ /out/lock.json ./\nRUN npm install --omit=dev',
      /source \/out\/lock\.json is not in stage prune/,
    ],
    ['schemas from a stage that has none', 'COPY schemas/ schemas/', 'COPY --from=deps /app/schemas/ schemas/', /source \/app\/schemas\/ is not in stage deps/],
    ['dist of the wrong folder', 'cp -R --parents services/*/dist/src /ship/', 'cp -R --parents services/*/dist/lib /ship/', /cp: services\/\*\/dist\/lib matches nothing/],
    ['no build stage output', 'COPY --from=build /ship/services/ services/', 'COPY --from=build /ship/service/ services/', /source \/ship\/service\/ is not in stage build/],
  ];
  for (const [label, from, to, expected] of cases) {
    const problems = await problemsOf(mutate(DOCKERFILE, from, to), 'ingest');
    assert.ok(
      problems.some((p) => expected.test(p)),
      `${label}: expected ${expected} in:\n${problems.join('\n')}`,
    );
  }
});

test('rules: a context source .dockerignore keeps out fails', async () => {
  const context = buildContext({ dockerignore: `${read('.dockerignore')}\nschemas\n` });
  const problems = await problemsOf(DOCKERFILE, 'windowing', context);
  assert.ok(
    problems.some((p) => /COPY schemas\/ schemas\/: source schemas\/ is not in the build context/.test(p)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => /registry\.ts reads schemas\/, which \.dockerignore keeps out/.test(p)),
    problems.join('\n'),
  );
});

test('rules: the build fails without what tsc and turbo need, or for the wrong workspace', async () => {
  const cases = [
    ['no tsconfig.base.json', 'COPY tsconfig.base.json ./\n', '', /tsconfig\.json extends \.\.\/\.\.\/tsconfig\.base\.json, and \/app\/tsconfig\.base\.json is not in this stage/],
    ['SERVICE not declared in the build stage', 'FROM ${NODE_IMAGE} AS build\nARG SERVICE\n', 'FROM ${NODE_IMAGE} AS build\n', /builds --filter=@pitwall\/, not @pitwall\/scoring/],
    ['SERVICE not declared in the prune stage', 'FROM ${NODE_IMAGE} AS prune\nARG SERVICE\n', 'FROM ${NODE_IMAGE} AS prune\n', /prunes for "@pitwall\/", not @pitwall\/scoring/],
    ['build before the install', 'RUN npm install --no-audit --no-fund --loglevel=error\nCOPY --from=prune /out/full/ ./', 'COPY --from=prune /out/full/ ./', /no dev install in this stage/],
    ['an unknown step', 'RUN rm -rf services/*/test services/*/bench \\', 'RUN npx tsc -b && rm -rf services/*/test services/*/bench \\', /RUN step "npx tsc -b": the check does not know/],
    ['prune without turbo', 'RUN npm install -g', 'RUN echo -g', /turbo is not installed in this stage/],
  ];
  for (const [label, from, to, expected] of cases) {
    const problems = await problemsOf(mutate(DOCKERFILE, from, to), 'scoring');
    assert.ok(
      problems.some((p) => expected.test(p)),
      `${label}: expected ${expected} in:\n${problems.join('\n')}`,
    );
  }
});

test('rules: npm ci, other flags than setup, dev dependencies in the image, tfjs-node all fail', async () => {
  let problems = await problemsOf(mutate(DOCKERFILE, 'RUN npm install --omit=dev', 'RUN npm ci --omit=dev'), 'ingest');
  assert.ok(
    problems.some((p) => /npm ci: install as scripts\/pitwall setup does/.test(p)),
    problems.join('\n'),
  );
  problems = await problemsOf(mutate(DOCKERFILE, 'RUN npm install --omit=dev --no-audit', 'RUN npm install --omit=dev'), 'ingest');
  assert.ok(
    problems.some((p) => /npm install without --no-audit/.test(p)),
    problems.join('\n'),
  );
  problems = await problemsOf(mutate(DOCKERFILE, 'RUN npm install --omit=dev', 'RUN npm install'), 'ingest');
  assert.ok(problems.includes('ingest: /app/node_modules holds dev dependencies (installed without --omit=dev)'), problems.join('\n'));
  problems = await problemsOf(mutate(DOCKERFILE, '"turbo@$(node -p', '"turbo@latest" "$(node -p'), 'ingest');
  assert.ok(
    problems.some((p) => /only turbo is installed globally/.test(p)),
    problems.join('\n'),
  );
  // A dependency on tfjs-node reaches the pruned manifests and is caught before any install.
  const scoring = JSON.parse(read('services/scoring/package.json'));
  scoring.dependencies['@tensorflow/tfjs-node'] = '^4.22.0';
  const context = buildContext({ overrides: { 'services/scoring/package.json': JSON.stringify(scoring, null, 2) } });
  problems = await problemsOf(DOCKERFILE, 'scoring', context);
  assert.ok(
    problems.some((p) => /services\/scoring\/package\.json brings @tensorflow\/tfjs-node/.test(p)),
    problems.join('\n'),
  );
});

test('rules: the image must run main.js as node from its workspace, its files root-owned', async () => {
  const cases = [
    ['as root', 'USER node\n', '', 'ingest: runs as root, not node'],
    ['elsewhere', 'WORKDIR /app/services/${SERVICE}', 'WORKDIR /app', 'ingest: WORKDIR is /app, not /app/services/ingest'],
    ['another command', 'CMD ["node", "dist/src/main.js"]', 'CMD ["node", "dist/main.js"]', 'ingest: CMD is ["node","dist/main.js"], not ["node","dist/src/main.js"]'],
    ['given to node', 'COPY --from=deps /app/package.json ./', 'COPY --chown=node --from=deps /app/package.json ./', /files given away \(--chown=node/],
    ['dist not shipped', 'COPY --from=build /ship/services/ services/\n', '', /ingest: \/app\/services\/ingest\/dist\/src\/main\.js is not in the image/],
    ['manifests not shipped', 'COPY --from=deps /app/services/ services/\n', '', /@pitwall\/common: no \/app\/services\/common\/package\.json/],
    ['no stage for the service', 'FROM runtime AS service-ingest', 'FROM runtime AS service-ingestion', /no stage service-ingest/],
  ];
  for (const [label, from, to, expected] of cases) {
    const problems = await problemsOf(mutate(DOCKERFILE, from, to), 'ingest');
    assert.ok(
      problems.some((p) => (typeof expected === 'string' ? p === expected : expected.test(p))),
      `${label}: expected ${expected} in:\n${problems.join('\n')}`,
    );
  }
});

test("rules: what a service reads next to its code must ship (the console's public/, scoring's models mounted)", async () => {
  let problems = await problemsOf(mutate(DOCKERFILE, 'COPY services/console/public/ services/console/public/\n', ''), 'console');
  assert.ok(
    problems.some((p) => /static\.ts reads services\/console\/public\/: \/app\/services\/console\/public\/\S+ and \d+ more not in the image/.test(p)),
    problems.join('\n'),
  );
  problems = await problemsOf(mutate(DOCKERFILE, 'ENV HEALTH_PORT=9103 \\\n    MODEL_DIR=/models', 'ENV HEALTH_PORT=9103'), 'scoring');
  assert.ok(
    problems.some((p) => /model-dir\.ts reads models\/ \(mounted, not shipped\): the image must set MODEL_DIR/.test(p)),
    problems.join('\n'),
  );
});

test("rules: the HEALTHCHECK must default to the port the service's config defaults to", async () => {
  const cases = [
    [
      'default of another service',
      "(process.env.HEALTH_PORT || '9102')",
      "(process.env.HEALTH_PORT || '9103')",
      'windowing',
      'windowing: HEALTHCHECK defaults HEALTH_PORT to 9103, the service to 9102',
    ],
    ['ENV disagrees', 'ENV HEALTH_PORT=9102', 'ENV HEALTH_PORT=9112', 'windowing', "windowing: ENV HEALTH_PORT is 9112, the HEALTHCHECK's default 9102"],
    ['not exposed', 'EXPOSE 9106', 'EXPOSE 9160', 'incidents', 'incidents: port 9106 is not EXPOSEd'],
    [
      'console on HEALTH_PORT',
      "(process.env.CONSOLE_PORT || '8080')",
      "(process.env.HEALTH_PORT || '8080')",
      'console',
      'console: HEALTHCHECK reads HEALTH_PORT, which services/console/src/config.ts does not read',
    ],
  ];
  for (const [label, from, to, service, expected] of cases) {
    const problems = await problemsOf(mutate(DOCKERFILE, from, to), service);
    assert.ok(problems.includes(expected), `${label}: expected "${expected}" in:\n${problems.join('\n')}`);
  }
});

test('rules: compose must build each image from the Dockerfile with a SERVICE that exists', () => {
  const compose = structuredClone(COMPOSE);
  compose.services.ingest.build.dockerfile = 'services/ingest/Dockerfile';
  compose.services.scoring.build.args.SERVICE = 'scorer';
  delete compose.services.console.build.args;
  compose.services.dispatch.image = 'pitwall/ingest:0.1.0';
  delete compose.services.simulator;
  assert.deepEqual(composeProblems(compose, DOCKERFILE), [
    'compose ingest: builds services/ingest/Dockerfile, not the one Dockerfile',
    'compose scoring: SERVICE scorer is no workspace (services/scorer/package.json, @pitwall/scorer)',
    'compose scoring: SERVICE scorer has no service-scorer stage in the Dockerfile',
    'compose scoring: image pitwall/scoring:0.1.0 is not pitwall/scorer:<tag>, what it builds',
    'compose console: no build arg SERVICE',
    'compose dispatch: image pitwall/ingest:0.1.0 is not pitwall/dispatch:<tag>, what it builds',
    'compose: no service builds SERVICE=scoring',
    'compose: no service builds SERVICE=simulator',
    'compose: no service builds SERVICE=console',
  ]);
});

test('rules: a command compose or k8s runs must be in its image; per-service Dockerfiles are found', async () => {
  const compose = structuredClone(COMPOSE);
  compose.services['schemas-deploy'].command = ['node', '/app/services/common/dist/schemas-cli.js', 'deploy'];
  const [run] = commandsRun(compose, []);
  const { image } = await images.get(run.service);
  assert.equal(image.files.has(run.file), false);
  const context = buildContext({ overrides: { 'services/ingest/Dockerfile': 'FROM node:20\n', 'docs/x.md': 'docker build -f services/ingest/Dockerfile .\n' } });
  assert.deepEqual(leftoverProblems(context).sort(), ['docs/x.md refers to services/ingest/Dockerfile', "services/ingest/Dockerfile exists: the repository root's Dockerfile builds every service"]);
});
