import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, serializeError } from '../src/log.js';
import { PitwallError } from '../src/errors.js';

const capture = (): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } => {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ service: 't', level: 'debug', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) };
};

test('a logged error keeps its stack, its own fields and its cause chain', () => {
  const { lines, log } = capture();
  const root = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const err = new PitwallError('send.too_large', 'the broker refused 3 records', { retriable: true, cause: root, context: { topic: 'vehicle.telemetry', partition: 2 } });
  log.error('send failed', { err, attempt: 3 });
  const line = lines[0]!;
  assert.equal(line.msg, 'send failed');
  assert.equal(line.attempt, 3);
  const e = line.err as Record<string, unknown>;
  assert.equal(e.message, 'the broker refused 3 records');
  assert.match(String(e.stack), /the broker refused 3 records\n\s+at /);
  assert.equal(e.retriable, true);
  const cause = e.cause as Record<string, unknown>;
  assert.equal(cause.message, 'read ECONNRESET');
  assert.equal(cause.code, 'ECONNRESET');
  assert.match(String(cause.stack), /read ECONNRESET/);
});

test('aggregate errors, non-error causes, cycles and deep chains are all logged without failing', () => {
  const agg = serializeError(new AggregateError([new Error('a'), 'b'], 'both failed')) as Record<string, unknown>;
  assert.deepEqual(
    (agg.errors as Record<string, unknown>[]).map((x) => (typeof x === 'string' ? x : x.message)),
    ['a', 'b'],
  );
  assert.deepEqual((serializeError(new Error('x', { cause: { status: 503 } })) as { cause: unknown }).cause, { status: 503 });

  const a = new Error('a');
  const b = new Error('b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  const cyc = serializeError(b) as { cause: { cause: { circular?: boolean } } };
  assert.equal(cyc.cause.cause.circular, true);

  let deep: Error = new Error('0');
  for (let i = 1; i < 20; i++) deep = new Error(String(i), { cause: deep });
  let node = serializeError(deep) as { cause?: unknown; truncated?: string };
  let hops = 0;
  while (node.cause) {
    node = node.cause;
    hops++;
  }
  assert.ok(hops <= 5 && node.truncated !== undefined, `cut after ${hops} causes`);
  assert.doesNotThrow(() => JSON.stringify(serializeError(deep)));
});

test('non-error values pass through; levels below the configured one are dropped', () => {
  assert.equal(serializeError('plain'), 'plain');
  const lines: string[] = [];
  const log = createLogger({ service: 't', level: 'warn', write: (l) => lines.push(l) });
  log.info('hidden');
  log.warn('shown', { n: 1 });
  assert.equal(lines.length, 1);
  assert.equal((JSON.parse(lines[0]!) as { n: number }).n, 1);
});
