/**
 * TensorFlow.js backend selection for Node.
 *
 * Order without an override: 'tensorflow' (tfjs-node, native; not a dependency because it cannot be
 * installed everywhere, so it is only used when someone installed it), then 'wasm', then 'cpu'
 * (pure JS, always there). An explicit override (TFJS_BACKEND) must work or startup fails: someone
 * asked for it on purpose.
 *
 * The wasm backend finds its .wasm binaries by path; in Node that is the package's dist/ folder
 * in node_modules, resolved from this module so it works from any working directory.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PitwallError, type Logger } from '@pitwall/common';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Loaders that make a backend available to tf.setBackend; replaceable in tests. */
export interface BackendLoaders {
  tensorflow(): Promise<void>;
  wasm(): Promise<void>;
  cpu(): Promise<void>;
}

/** Directory holding tfjs-backend-wasm's .wasm files, with a trailing slash as setWasmPaths wants. */
export function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

// Kept in a variable so TypeScript does not try to resolve a package that is not installed.
const TFJS_NODE = '@tensorflow/tfjs-node';

export const defaultLoaders: BackendLoaders = {
  async tensorflow() {
    await import(TFJS_NODE);
  },
  async wasm() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmDistDir());
  },
  async cpu() {
    // Registered by @tensorflow/tfjs itself.
  },
};

export class BackendError extends PitwallError {
  constructor(message: string, cause?: unknown) {
    super('tfjs.backend', message, { retriable: false, cause });
  }
}

export interface BackendChoice {
  backend: BackendName;
  /** Backends tried before it, with why they were skipped. */
  skipped: Array<{ backend: BackendName; reason: string }>;
}

async function tryBackend(name: BackendName, loaders: BackendLoaders): Promise<string | undefined> {
  try {
    await loaders[name]();
  } catch (err) {
    return `not available: ${(err as Error).message.split('\n')[0]}`;
  }
  // setBackend resolves false (after logging) when the backend's initialisation fails.
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    return `failed to initialise: ${(err as Error).message.split('\n')[0]}`;
  }
  if (!ok || tf.getBackend() !== name) return 'failed to initialise';
  // A tiny op proves the kernels actually run (e.g. that the .wasm binary was found).
  try {
    const sum = tf.tidy(() => tf.tensor1d([1, 2, 3]).sum().dataSync()[0]);
    if (sum !== 6) return `self-test gave ${sum} for 1+2+3`;
  } catch (err) {
    return `self-test failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/**
 * Activates a backend and logs which one. With `override`, exactly that backend or a BackendError;
 * without, the first of tensorflow, wasm, cpu that works.
 */
export async function selectBackend(opts: { override?: BackendName | undefined; log: Logger; loaders?: BackendLoaders }): Promise<BackendChoice> {
  const loaders = opts.loaders ?? defaultLoaders;
  const order: readonly BackendName[] = opts.override ? [opts.override] : BACKENDS;
  const skipped: BackendChoice['skipped'] = [];
  for (const name of order) {
    const problem = await tryBackend(name, loaders);
    if (problem === undefined) {
      opts.log.info('tfjs backend active', { backend: name, override: opts.override ?? null, skipped });
      return { backend: name, skipped };
    }
    skipped.push({ backend: name, reason: problem });
    if (opts.override) throw new BackendError(`TFJS_BACKEND=${name} requested but the backend is ${problem}`);
    opts.log.debug('tfjs backend skipped', { backend: name, reason: problem });
  }
  throw new BackendError(`no TensorFlow.js backend works: ${skipped.map((s) => `${s.backend} ${s.reason}`).join('; ')}`);
}
