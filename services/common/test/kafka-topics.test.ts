import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { creationMayComplete, partitionLag } from '../src/kafka.js';

// kafkajs's own error classes (its typings omit some), and protocol errors made from the broker's
// error codes as its decoder makes them.
type ErrorClass = new (...args: unknown[]) => Error;
const require = createRequire(import.meta.url);
const { KafkaJSAggregateError, KafkaJSCreateTopicError, KafkaJSNonRetriableError, KafkaJSProtocolError } = require('kafkajs') as Record<
  'KafkaJSAggregateError' | 'KafkaJSCreateTopicError' | 'KafkaJSNonRetriableError' | 'KafkaJSProtocolError',
  ErrorClass
>;
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode(this: void, code: number): object };
const created = (code: number, topic: string) => new KafkaJSCreateTopicError(createErrorFromCode(code), topic);
const TOPIC_ALREADY_EXISTS = 36;
const REQUEST_TIMED_OUT = 7;
const TOPIC_AUTHORIZATION_FAILED = 29;
const INVALID_CONFIG = 40;

test('createTopics failures after which the topics may still all exist: wait for them instead of failing', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['another instance created one of them', new KafkaJSAggregateError('x', [created(TOPIC_ALREADY_EXISTS, 'a')]), true],
    ['exists beside a timeout', new KafkaJSAggregateError('x', [created(TOPIC_ALREADY_EXISTS, 'a'), created(REQUEST_TIMED_OUT, 'b')]), true],
    ['a busy controller timed out', new KafkaJSProtocolError(createErrorFromCode(REQUEST_TIMED_OUT)), true],
    ['one topic not authorized', new KafkaJSAggregateError('x', [created(TOPIC_ALREADY_EXISTS, 'a'), created(TOPIC_AUTHORIZATION_FAILED, 'b')]), false],
    ['an invalid topic config', new KafkaJSAggregateError('x', [created(INVALID_CONFIG, 'a')]), false],
    ['a non-retriable wrapper', new KafkaJSNonRetriableError(new Error('bad')), false],
    ['an aggregate of nothing', new KafkaJSAggregateError('x', []), false],
    ['a plain error', new Error('boom'), false],
  ];
  for (const [what, err, expected] of cases) assert.equal(creationMayComplete(err), expected, what);
});

test('partitionLag: committed offset up to the high watermark; never committed counts from the start', () => {
  const table: Array<[string, { high: string; low: string }, bigint]> = [
    ['40', { high: '50', low: '0' }, 10n],
    ['50', { high: '50', low: '0' }, 0n],
    ['60', { high: '50', low: '0' }, 0n], // ahead of a stale end: no negative lag
    ['-1', { high: '50', low: '20' }, 30n],
  ];
  for (const [committed, end, lag] of table) assert.equal(partitionLag(committed, end), lag, `${committed} of ${end.low}..${end.high}`);
});
