/**
 * What windowing stores in the Kafka offset-commit metadata of each partition, so a consumer that
 * takes the partition over (restart, crash, rebalance) resumes exactly: `ck` is the partition's
 * arrival-time clock just before the committed offset and `ru` the next offset it had processed.
 * Format: compact JSON, {"v":2,"ck":<epoch ms|null>,"ru":"<offset>"}. Version 1
 * ({"v":1,"wm":...,"ru":...}, a partition-wide watermark) is still read: its watermark closes
 * windows during the replay only, so an upgrade does not emit a window twice.
 */
import { NO_RESUME, type Resume } from './partition-state.js';

export function encodeResume(r: Resume): string {
  return JSON.stringify({ v: 2, ck: Number.isFinite(r.clock) ? r.clock : null, ru: r.replayUntil.toString() });
}

export function decodeResume(metadata: string | null | undefined): Resume {
  if (!metadata) return NO_RESUME;
  try {
    const m = JSON.parse(metadata) as { v?: number; ck?: number | null; wm?: number | null; ru?: string };
    const replayUntil = BigInt(m.ru ?? '0');
    if (m.v === 2) return { clock: typeof m.ck === 'number' ? m.ck : Number.NEGATIVE_INFINITY, replayUntil };
    if (m.v === 1) return { clock: Number.NEGATIVE_INFINITY, replayUntil, ...(typeof m.wm === 'number' ? { legacyWatermark: m.wm } : {}) };
    return NO_RESUME;
  } catch {
    return NO_RESUME;
  }
}
