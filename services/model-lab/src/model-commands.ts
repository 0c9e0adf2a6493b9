/**
 * `npm run model -- <command>`: which model version the scoring replicas serve, through
 * model.updates (format in @pitwall/model, model-updates.ts). Every check (the version exists and loads here, there
 * is something to roll back to) runs before anything is published.
 */
import os from 'node:os';
import path from 'node:path';
import { readdir, readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { configReader, createKafka, createLogger, LOG_LEVELS, readCommonConfig, type Env, type Logger } from '@pitwall/common';
import {
  defaultModelsDir,
  isGraphModelJSON,
  loadModelDir,
  METADATA_JSON,
  MODEL_JSON,
  MODEL_UPDATE_SCHEMA,
  type ModelUpdateAction,
  type ModelUpdateEvent,
  type ModelUpdateState,
  publishModelUpdate,
  readModelJSON,
  readModelUpdates,
  resolveModelUpdates,
  resolveVersion,
  rollbackTarget,
  validateMetadata,
} from '@pitwall/model';

export const USAGE = `Usage: npm run model -- <command> [flags]

Commands:
  status               model versions on disk (metadata summary) and the model.updates state
  activate <version>   every scoring replica serves <version>; "latest" hands the choice back to
                       the models directory (highest version, picked up as it appears)
  rollback             activate the version that was active before the current one (from the
                       model.updates history; needs two activations in the log)
  shadow <version>     score <version> alongside the active model; agreement reports go to
                       TOPIC_SHADOW_REPORTS (model.shadow), nothing else is produced from it
  unshadow             stop the shadow model

Flags:
  --model <name>       model name (default: MODEL_NAME or pitwall-ae)
  --models-dir <dir>   models folder checked before publishing (default: MODEL_DIR or the
                       repository's models/); replicas load from their own MODEL_DIR
  --by <who>           issued_by of the event (default: $USER@hostname)
  --reason <text>      free text stored with the event
  --json               status as JSON
  -h, --help           this text

Environment: KAFKA_BROKERS, TOPIC_MODEL_UPDATES (default model.updates), MODEL_NAME, MODEL_DIR,
LOG_LEVEL (default warn).
Exit codes: 0 done; 1 failure (e.g. brokers unreachable); 2 usage error or refused (unknown or
broken version, nothing to roll back to), nothing published.`;

/** A refusal before anything was published: exit code 2. */
export class CliUsageError extends Error {
  override name = 'CliUsageError';
}

export interface CliArgs {
  command: 'status' | 'help' | ModelUpdateAction;
  version: string | undefined;
  model: string | undefined;
  modelsDir: string | undefined;
  by: string | undefined;
  reason: string | undefined;
  json: boolean;
}

const COMMANDS = ['status', 'activate', 'rollback', 'shadow', 'unshadow'] as const;

/** Parses argv (without node and script); throws CliUsageError. */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        model: { type: 'string' },
        'models-dir': { type: 'string' },
        by: { type: 'string' },
        reason: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const base = { model: values.model, modelsDir: values['models-dir'], by: values.by, reason: values.reason, json: values.json ?? false };
  if (values.help || positionals.length === 0) return { command: 'help', version: undefined, ...base };
  const [command, version, ...rest] = positionals;
  if (!(COMMANDS as readonly string[]).includes(command!)) throw new CliUsageError(`unknown command "${command}" (expected one of ${COMMANDS.join(', ')})`);
  const needsVersion = command === 'activate' || command === 'shadow';
  if (needsVersion && version === undefined) throw new CliUsageError(`${command} needs a version, e.g. \`${command} 2\``);
  if (!needsVersion && version !== undefined) throw new CliUsageError(`${command} takes no version (got "${version}")`);
  if (rest.length) throw new CliUsageError(`unexpected arguments: ${rest.join(' ')}`);
  if (version !== undefined && !/^[0-9]+$/.test(version) && !(command === 'activate' && version === 'latest')) {
    throw new CliUsageError(`version must be a number${command === 'activate' ? ' or "latest"' : ''}, got "${version}"`);
  }
  return { command: command as CliArgs['command'], version, ...base };
}

export interface VersionSummary {
  version: string;
  ok: boolean;
  /** Why the metadata is not servable, when !ok. */
  problem?: string;
  threshold?: number;
  /** model.json's format (layers-model or graph-model); undefined when model.json is unreadable. */
  format?: string;
  createdAt?: string;
  description?: string;
  trainingWindows?: number;
  healthyScoreP99?: number;
}

/** Numeric version directories of `name`, ascending, with their metadata summary. */
export async function listVersions(modelsDir: string, name: string): Promise<VersionSummary[]> {
  const base = path.join(modelsDir, name);
  const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
  const versions = entries
    .filter((e) => e.isDirectory() && /^[0-9]+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b));
  return Promise.all(
    versions.map(async (version): Promise<VersionSummary> => {
      const dir = path.join(base, version);
      try {
        const meta = validateMetadata(dir, JSON.parse(await readFile(path.join(dir, METADATA_JSON), 'utf8')));
        const modelJson = await readModelJSON(path.join(dir, MODEL_JSON), (m) => new Error(m)).catch(() => undefined);
        return {
          version,
          ok: true,
          threshold: meta.threshold,
          ...(modelJson ? { format: isGraphModelJSON(modelJson) ? 'graph-model' : 'layers-model' } : {}),
          createdAt: meta.createdAt,
          description: meta.description,
          trainingWindows: meta.trainingData?.windows,
          healthyScoreP99: meta.trainingMetrics?.healthyScoreP99,
        };
      } catch (err) {
        return { version, ok: false, problem: (err as Error).message };
      }
    }),
  );
}

/** Human-readable status. Pure. */
export function formatStatus(name: string, modelsDir: string, versions: readonly VersionSummary[], state: ModelUpdateState): string {
  const lines = [`model ${name} in ${modelsDir}`];
  if (versions.length === 0) lines.push('  (no version directories)');
  for (const v of versions) {
    lines.push(
      v.ok
        ? `  ${v.version.padStart(4)}  ${(v.format ?? '?').padEnd(12)}  threshold ${v.threshold}  created ${v.createdAt}  windows ${v.trainingWindows ?? '?'}  healthy p99 ${v.healthyScoreP99 ?? '?'}  ${(v.description ?? '').slice(0, 60)}`.trimEnd()
        : `  ${v.version.padStart(4)}  INVALID: ${v.problem}`,
    );
  }
  lines.push(`active (model.updates): ${state.active ?? 'none: replicas follow MODEL_VERSION'}`);
  lines.push(`shadow (model.updates): ${state.shadow === undefined ? 'none: replicas follow MODEL_SHADOW_VERSION' : (state.shadow ?? 'none')}`);
  lines.push(`rollback would activate: ${rollbackTarget(state) ?? 'nothing (fewer than two activations in the log)'}`);
  const l = state.last;
  lines.push(`latest event: ${l ? `${l.action} ${l.version ?? ''} by ${l.issued_by} at ${new Date(l.issued_at).toISOString()}${l.reason ? ` (${l.reason})` : ''}` : 'none'}`);
  return lines.join('\n');
}

/** Loads the version here with the scorer's own checks; throws CliUsageError when it cannot serve. */
async function checkVersion(modelsDir: string, name: string, version: string): Promise<void> {
  if (version === 'latest') return;
  try {
    const { dir } = await resolveVersion(modelsDir, name, version);
    const loaded = await loadModelDir(dir);
    loaded.model.dispose();
  } catch (err) {
    const known = (await listVersions(modelsDir, name)).map((v) => v.version);
    throw new CliUsageError(`version ${version} of ${name} cannot be served: ${(err as Error).message} (versions on disk: ${known.join(', ') || 'none'})`);
  }
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** Runs one command; resolves with the exit code. */
export async function runModelCli(argv: readonly string[], env: Env, io: CliIo, now: () => number = Date.now): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    io.out(USAGE);
    return 0;
  }
  const c = configReader(env);
  const common = readCommonConfig(c, 'model-cli');
  const logLevel = c.oneOf('LOG_LEVEL', LOG_LEVELS, 'warn');
  const config = c.done({
    ...common,
    logLevel,
    name: args.model ?? c.str('MODEL_NAME', 'pitwall-ae'),
    modelsDir: args.modelsDir ?? c.str('MODEL_DIR', defaultModelsDir()),
    by: args.by ?? `${env.USER ?? env.LOGNAME ?? 'unknown'}@${os.hostname()}`,
  });
  const log: Logger = createLogger({ service: 'model-cli', level: config.logLevel, write: (line) => io.err(line) });
  const kafka = createKafka(config, log);
  const history = async (): Promise<ModelUpdateState> => resolveModelUpdates(await readModelUpdates(kafka, config.topics.modelUpdates, log), config.name);
  try {
    // activate and shadow need no history: their version is checked before any broker is contacted.
    if (args.version !== undefined) await checkVersion(config.modelsDir, config.name, args.version);
    if (args.command === 'status') {
      const state = await history();
      const versions = await listVersions(config.modelsDir, config.name);
      if (args.json) io.out(JSON.stringify({ model: config.name, modelsDir: config.modelsDir, versions, state: { ...state, rollbackTarget: rollbackTarget(state) ?? null } }, null, 2));
      else io.out(formatStatus(config.name, config.modelsDir, versions, state));
      return 0;
    }
    let version = args.version ?? null;
    if (args.command === 'rollback') {
      const state = await history();
      version = rollbackTarget(state) ?? null;
      if (version === null) {
        throw new CliUsageError(
          `nothing to roll back to: model.updates (${config.topics.modelUpdates}) holds ${state.history.length ? `only version ${state.history.join(', ')}` : 'no activation'} of ${config.name}; use \`activate <version>\``,
        );
      }
      await checkVersion(config.modelsDir, config.name, version);
    }
    const event: ModelUpdateEvent = { schema: MODEL_UPDATE_SCHEMA, model: config.name, action: args.command, version, issued_at: now(), issued_by: config.by };
    if (args.reason !== undefined) event.reason = args.reason;
    const offset = await publishModelUpdate(kafka, config.topics.modelUpdates, event);
    io.out(`published ${event.action}${version === null ? '' : ` ${version}`} of ${config.name} to ${config.topics.modelUpdates} at offset ${offset}`);
    return 0;
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.err(`error: ${err.message}`);
      return 2;
    }
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}
