/**
 * Kafka sends bounded by the broker's limits. The broker refuses a partition's record batch larger
 * than the topic's `max.message.bytes` with the non-retriable MESSAGE_TOO_LARGE (and a batch over
 * the segment size with RECORD_LIST_TOO_LARGE); resending the same batch can never succeed. So every
 * producer path splits what it sends into chunks whose estimated encoded size stays under a byte
 * budget, sends them one after another (per-key order holds; inside a transaction all chunks
 * commit together), and dead-letters a single record that cannot fit, truncated.
 *
 * Size estimate (Kafka record batch v2, uncompressed, as kafkajs encodes it):
 *   batch  = 61 bytes of header (base offset 8, length 4, leader epoch 4, magic 1, CRC 4,
 *            attributes 2, last offset delta 4, first/max timestamp 16, producer id 8, epoch 2,
 *            base sequence 4, record count 4) + its records
 *   record = varint(length) + attributes 1 + varlong(timestamp delta) + varint(offset delta)
 *            + varint(key length) + key + varint(value length) + value
 *            + varint(header count) + per header varint(key length) + key + varint(value length) + value
 * Deltas are counted at their largest (10 and 5 bytes), so the estimate is never below the real size.
 * Bounding a whole request's records by the budget bounds every partition's batch in it.
 */
import type { IHeaders, Message, TopicMessages } from 'kafkajs';
import { deadLetterHeaders, DLQ_HEADER } from './deadletter.js';
import { PitwallError } from './errors.js';
import type { Logger } from './log.js';

export const RECORD_BATCH_OVERHEAD = 61;
/** Headers a truncated or too-large dead letter carries besides the usual DLQ_HEADER ones. */
export const TOO_LARGE_HEADER = Object.freeze({
  /** Byte length of the value before truncation. */
  originalSize: 'pitwall.dlq.original_size',
  /** 'true' when the value was cut to fit. */
  truncated: 'pitwall.dlq.truncated',
  /** The topic the record was meant for. */
  topic: 'pitwall.dlq.topic',
});
export const RECORD_TOO_LARGE = 'record.too_large';

/** A record with its topic: the unit the splitter orders and groups. */
export interface TopicRecord {
  topic: string;
  message: Message;
}

/** Size of a zigzag varint (Kafka's signed varint). */
export function varintSize(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

const byteLength = (v: Buffer | string): number => (typeof v === 'string' ? Buffer.byteLength(v) : v.length);
const bytesField = (v: Buffer | string | null | undefined): number => (v === null || v === undefined ? 1 : varintSize(byteLength(v)) + byteLength(v));

function headerEntries(headers: IHeaders | undefined): [string, Buffer | string | undefined][] {
  const out: [string, Buffer | string | undefined][] = [];
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (Array.isArray(v)) for (const item of v) out.push([k, item]);
    else out.push([k, v]);
  }
  return out;
}

/** Estimated encoded size of one record in a v2 batch (never below kafkajs's real encoding). */
export function recordSize(message: Pick<Message, 'key' | 'value' | 'headers'>): number {
  if (message.headers === undefined) {
    // Most records (every reading): no header entries to list.
    const body = 1 + 10 + 5 + bytesField(message.key) + bytesField(message.value) + 1;
    return varintSize(body) + body;
  }
  const headers = headerEntries(message.headers);
  let body = 1 + 10 + 5 + bytesField(message.key) + bytesField(message.value) + varintSize(headers.length);
  for (const [k, v] of headers) body += bytesField(k) + bytesField(v);
  return varintSize(body) + body;
}

/** Estimated size of a batch holding `records`. */
export function batchSize(records: readonly TopicRecord[]): number {
  let size = RECORD_BATCH_OVERHEAD;
  for (const r of records) size += recordSize(r.message);
  return size;
}

export interface SendLimits {
  /** Most estimated bytes per send, batch header included. */
  maxBytes: number;
  /** Most records per send. */
  maxRecords?: number;
}

export interface Split {
  /** In input order; each one's batchSize is <= maxBytes. */
  chunks: TopicRecord[][];
  /** Records that exceed maxBytes on their own (left out of the chunks), by input index. */
  tooLarge: { index: number; bytes: number }[];
}

/** Groups records, in order, into chunks under the limits. */
export function splitRecords(records: readonly TopicRecord[], limits: SendLimits): Split {
  const maxRecords = limits.maxRecords ?? Number.POSITIVE_INFINITY;
  const chunks: TopicRecord[][] = [];
  const tooLarge: Split['tooLarge'] = [];
  let chunk: TopicRecord[] = [];
  let bytes = RECORD_BATCH_OVERHEAD;
  records.forEach((record, index) => {
    const size = recordSize(record.message);
    if (RECORD_BATCH_OVERHEAD + size > limits.maxBytes) {
      tooLarge.push({ index, bytes: RECORD_BATCH_OVERHEAD + size });
      return;
    }
    if (chunk.length > 0 && (bytes + size > limits.maxBytes || chunk.length >= maxRecords)) {
      chunks.push(chunk);
      chunk = [];
      bytes = RECORD_BATCH_OVERHEAD;
    }
    chunk.push(record);
    bytes += size;
  });
  if (chunk.length > 0) chunks.push(chunk);
  return { chunks, tooLarge };
}

/** kafkajs's sendBatch shape -> records in order (topic by topic, each topic's messages in order). */
export function toTopicRecords(topicMessages: readonly TopicMessages[]): TopicRecord[] {
  return topicMessages.flatMap(({ topic, messages }) => messages.map((message) => ({ topic, message })));
}

/** Records -> kafkajs's sendBatch shape, keeping each topic's order. */
export function toTopicMessages(records: readonly TopicRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const { topic, message } of records) {
    const list = byTopic.get(topic);
    if (list) list.push(message);
    else byTopic.set(topic, [message]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

export function isDeadLetter(record: TopicRecord): boolean {
  return record.message.headers?.[DLQ_HEADER.reason] !== undefined;
}

/**
 * The dead letter of a record that is too large to send: the original value (truncated later if
 * needed) and key, its headers, plus the dead-letter headers with reason record.too_large, the
 * topic it was meant for and the value's original size.
 */
export function tooLargeDeadLetter(service: string, dlqTopic: string, record: TopicRecord, bytes: number, limit: number, now = Date.now()): TopicRecord {
  const { key, value, headers } = record.message;
  return {
    topic: dlqTopic,
    message: {
      key: key ?? null,
      value,
      headers: {
        ...headers,
        ...deadLetterHeaders(service, { reason: RECORD_TOO_LARGE, message: `a record of about ${bytes} bytes for ${record.topic} exceeds the send limit of ${limit} bytes` }, {}, now),
        [TOO_LARGE_HEADER.topic]: record.topic,
        [TOO_LARGE_HEADER.originalSize]: String(value === null ? 0 : byteLength(value)),
      },
    },
  };
}

const clip = (v: Buffer | string | undefined, max: number): Buffer | string | undefined =>
  v === undefined || byteLength(v) <= max ? v : (typeof v === 'string' ? Buffer.from(v) : v).subarray(0, max);

/**
 * The record cut to fit a batch of `maxBytes`: the value is truncated (headers original_size and
 * truncated say so; an original_size already there is kept), and if that is not enough, header
 * values are cut to 128 bytes and the key dropped. Undefined if even that does not fit.
 */
export function truncateToFit(record: TopicRecord, maxBytes: number): TopicRecord | undefined {
  const fits = (m: Message): boolean => RECORD_BATCH_OVERHEAD + recordSize(m) <= maxBytes;
  if (fits(record.message)) return record;
  const value = record.message.value === null ? Buffer.alloc(0) : typeof record.message.value === 'string' ? Buffer.from(record.message.value) : record.message.value;
  const marks = { [TOO_LARGE_HEADER.originalSize]: String(value.length), ...record.message.headers, [TOO_LARGE_HEADER.truncated]: 'true' };
  const attempts: Message[] = [
    { ...record.message, headers: marks },
    {
      ...record.message,
      key: null,
      headers: Object.fromEntries(headerEntries(marks).map(([k, v]) => [k, clip(v, 128)])),
    },
  ];
  for (const base of attempts) {
    const empty = { ...base, value: Buffer.alloc(0) };
    if (!fits(empty)) continue;
    // Room for the value; the two length varints grow by at most 4 bytes each.
    let room = Math.min(value.length, maxBytes - RECORD_BATCH_OVERHEAD - recordSize(empty) - 8);
    while (room > 0 && !fits({ ...base, value: value.subarray(0, room) })) room -= 8;
    return { topic: record.topic, message: { ...base, value: value.subarray(0, Math.max(0, room)) } };
  }
  return undefined;
}

const TOO_LARGE_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);
const TOO_LARGE_CODES = new Set([10, 18]);

/** Whether the broker refused a send for its size (kafkajs error type or code, also as a cause). */
export function isTooLarge(err: unknown): boolean {
  let e = err as { type?: unknown; code?: unknown; cause?: unknown; originalError?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (TOO_LARGE_TYPES.has(String(e.type)) || (e.type === undefined && TOO_LARGE_CODES.has(Number(e.code)) && String((e as Error).name).startsWith('KafkaJS'))) return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}

export type SendFn = (topicMessages: TopicMessages[]) => Promise<unknown>;

export interface SendReport {
  records: number;
  chunks: number;
  /** Records replaced by their dead letter because they could not fit alone. */
  deadLettered: number;
  /** Dead letters cut to fit. */
  truncated: number;
}

export interface BoundedSender {
  /**
   * Sends `topicMessages` through `send` in chunks under the budget, one after another. A
   * MESSAGE_TOO_LARGE halves the budget (kept for later sends) and re-splits the rest. After a
   * refused chunk of several records the producer's sequence numbers are out of step with the
   * broker (kafkajs rolls back every partition of the request, though others may have been
   * written), so the chunk can only be re-split after `reset` (a fresh idempotent producer
   * session); without one (a transaction) a retriable error is thrown: abort and redo the
   * transaction, which the lowered budget then splits finer.
   */
  send(send: SendFn, topicMessages: readonly TopicMessages[], opts?: { reset?: () => Promise<void> }): Promise<SendReport>;
  /** The current byte budget per send. */
  budget(): number;
  /** Sets the budget, e.g. to readSendBudget's answer at start. */
  setBudget(bytes: number): void;
}

export interface BoundedSenderOptions {
  /** Initial budget (KAFKA_MAX_BATCH_BYTES until the broker's limits are read). */
  maxBytes: number;
  maxRecords?: number;
  service: string;
  /** Where a record that cannot fit goes (as tooLargeDeadLetter builds it), unless `deadLetter` is given. */
  dlqTopic: string;
  deadLetter?: (record: TopicRecord, bytes: number, budget: number) => TopicRecord;
  log?: Logger;
  /** Below this budget a refused send is an error, not halved further (a broker limit that small is misconfigured). */
  minBytes?: number;
}

export const MIN_SEND_BUDGET = 1024;

export function createBoundedSender(opts: BoundedSenderOptions): BoundedSender {
  let budget = opts.maxBytes;
  const minBytes = opts.minBytes ?? MIN_SEND_BUDGET;
  const deadLetter = opts.deadLetter ?? ((r: TopicRecord, bytes: number, limit: number) => tooLargeDeadLetter(opts.service, opts.dlqTopic, r, bytes, limit));
  const log = opts.log;

  /** Splits under the current budget; a record too large alone becomes its (fitted) dead letter in its place. */
  const plan = (records: TopicRecord[], report: SendReport): TopicRecord[][] => {
    const split = splitRecords(records, { maxBytes: budget, maxRecords: opts.maxRecords });
    if (split.tooLarge.length === 0) return split.chunks;
    const replaced = [...records];
    for (const { index, bytes } of split.tooLarge) {
      const record = records[index]!;
      const wasDeadLetter = isDeadLetter(record);
      const letter = wasDeadLetter ? record : deadLetter(record, bytes, budget);
      const fitted = truncateToFit(letter, budget);
      if (!fitted) throw new PitwallError('send.too_large', `not even a truncated dead letter fits the send budget of ${budget} bytes`, { context: { topic: record.topic } });
      if (!wasDeadLetter) report.deadLettered++;
      if (fitted !== letter) report.truncated++;
      replaced[index] = fitted;
      log?.warn(wasDeadLetter ? 'dead letter too large to send: truncated' : 'record too large to send: dead-lettered', {
        topic: record.topic,
        bytes,
        budget,
        dlqTopic: fitted.topic,
        truncated: fitted !== letter,
      });
    }
    return splitRecords(replaced, { maxBytes: budget, maxRecords: opts.maxRecords }).chunks;
  };

  return {
    budget: () => budget,
    setBudget(bytes) {
      budget = Math.max(minBytes, Math.floor(bytes));
    },
    async send(send, topicMessages, sendOpts = {}) {
      const records = toTopicRecords(topicMessages);
      const report: SendReport = { records: records.length, chunks: 0, deadLettered: 0, truncated: 0 };
      if (records.length === 0) return report;
      const started = Date.now();
      let chunks = plan(records, report);
      let i = 0;
      while (i < chunks.length) {
        const chunk = chunks[i]!;
        try {
          await send(toTopicMessages(chunk));
          report.chunks++;
          i++;
        } catch (err) {
          if (!isTooLarge(err)) throw err;
          const bytes = batchSize(chunk);
          const lowered = Math.floor(Math.min(budget, bytes) / 2);
          if (lowered < minBytes) {
            throw new PitwallError('send.too_large', `the broker refused ${bytes} bytes and the send budget cannot go below ${minBytes}`, { cause: err });
          }
          budget = lowered;
          log?.warn('broker refused a send as too large: budget halved', { records: chunk.length, bytes, budget, err });
          if (chunk.length > 1) {
            if (!sendOpts.reset) {
              throw new PitwallError('send.too_large', `the broker refused ${chunk.length} records (${bytes} bytes); retry with the lowered budget of ${budget} bytes`, {
                retriable: true,
                cause: err,
              });
            }
            await sendOpts.reset();
          }
          // A single refused record was rolled back cleanly (one partition): re-split in place.
          chunks = plan(chunks.slice(i).flat(), report);
          i = 0;
        }
      }
      if (report.chunks > 1) log?.info('send split to stay under the byte budget', { ...report, budget, ms: Date.now() - started });
      return report;
    },
  };
}
