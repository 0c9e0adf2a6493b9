/**
 * The sessions topic (compacted; JSON RevocationRecords, see session.ts), read from its beginning
 * before the HTTP server listens and then followed, so a cookie signed out or revoked on any
 * replica, before or after this one started, is refused here too.
 */
import type { Batch, Kafka } from 'kafkajs';
import { startTopicReader, type Logger, type TopicReader } from '@pitwall/common';
import { parseRevocation, type RevocationRecord } from '../session.js';

export function createRevocationHandler(apply: (r: RevocationRecord) => void, log: Logger): (batch: Pick<Batch, 'messages'>) => void {
  return (batch) => {
    for (const m of batch.messages) {
      const r = parseRevocation(m.value);
      if (r) apply(r);
      else if (m.value !== null) log.warn('unreadable session revocation skipped', { offset: m.offset });
    }
  };
}

/** Resolves once started; its `caughtUp` once every revocation there is has been applied (at most 60 s). */
export function startRevocationReader(kafka: Kafka, opts: { topic: string; groupIdPrefix: string; log: Logger; apply: (r: RevocationRecord) => void }): Promise<TopicReader> {
  return startTopicReader(kafka, {
    topic: opts.topic,
    groupIdPrefix: `${opts.groupIdPrefix}-sessions`,
    follow: true,
    log: opts.log,
    timeoutMs: 60_000,
    onBatch: createRevocationHandler(opts.apply, opts.log),
  });
}
