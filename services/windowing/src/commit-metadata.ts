/**
 * What windowing stores in the Kafka offset-commit metadata of each partition, so a consumer that
 * takes the partition over (restart, crash, rebalance) resumes exactly: `wm` is the partition's
 * watermark at commit time and `ru` the next offset it had processed. Format: compact JSON,
 * {"v":1,"wm":<epoch ms|null>,"ru":"<offset>"}.
 */
import type { Resume } from './partition-state.js';

export function encodeResume(r: Resume): string {
  return JSON.stringify({ v: 1, wm: Number.isFinite(r.watermark) ? r.watermark : null, ru: r.replayUntil.toString() });
}

export function decodeResume(metadata: string | null | undefined): Resume {
  const none: Resume = { watermark: Number.NEGATIVE_INFINITY, replayUntil: 0n };
  if (!metadata) return none;
  try {
    const m = JSON.parse(metadata) as { v?: number; wm?: number | null; ru?: string };
    if (m.v !== 1) return none;
    return { watermark: typeof m.wm === 'number' ? m.wm : Number.NEGATIVE_INFINITY, replayUntil: BigInt(m.ru ?? '0') };
  } catch {
    return none;
  }
}
