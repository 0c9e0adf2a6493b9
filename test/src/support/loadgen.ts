/** `npm run loadtest` as a process of its own (the built CLI), with the shared Kafka and registry as admin. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { INFRA, REPO, kafkaIdentityEnv } from './stack.js';

export function runLoadgen(args: readonly string[], env: Record<string, string>, timeoutMs = 240_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(REPO, 'services/loadgen/dist/src/main.js'), ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', KAFKA_BROKERS: INFRA.kafka, SCHEMA_REGISTRY_URL: INFRA.registry, ...kafkaIdentityEnv('admin'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
