/**
 * Micro-batching for the Kafka producer: items accumulate while a send is in flight and go out
 * together in the next one, so throughput grows with load instead of paying one round trip per
 * message. One send at a time keeps Kafka order per key. A batch is bounded by count and by bytes
 * (`sizeOf`, the estimated encoded size), so it fits the broker's request limits; a single item
 * over the byte bound goes alone (the sender dead-letters it). A failed send is retried with
 * backoff and its items are kept; their MQTT acks are only released by `onSent` after Kafka
 * acknowledged them.
 */
export interface Batcher<T> {
  add(item: T): void;
  /** Sends everything added so far and resolves when it is acknowledged. */
  flush(): Promise<void>;
  /**
   * Flushes for at most `timeoutMs`, then stops: nothing more is sent, retried or acknowledged.
   * Resolves true if everything was sent. Items left over were never acknowledged to their source.
   */
  close(timeoutMs: number): Promise<boolean>;
  /** Items added and not yet acknowledged by Kafka (buffered or in the send in flight). */
  pending(): number;
}

export interface BatcherOptions<T> {
  maxBatch: number;
  /** Byte bound of one batch (a function: the bound may be lowered after start). */
  maxBytes?: number | (() => number);
  sizeOf?: (item: T) => number;
  lingerMs: number;
  send(items: T[]): Promise<void>;
  onSent(items: T[]): void;
  onError(err: unknown, attempt: number): void;
  backoffMs?: (attempt: number) => number;
}

export function createBatcher<T>(opts: BatcherOptions<T>): Batcher<T> {
  let buffer: T[] = [];
  let bufferBytes = 0;
  let inFlight: Promise<void> | undefined;
  let sending = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  const backoff = opts.backoffMs ?? ((n: number) => Math.min(5000, 100 * 2 ** n));
  const sizeOf = opts.sizeOf ?? (() => 0);
  const maxBytes = (): number => (typeof opts.maxBytes === 'function' ? opts.maxBytes() : (opts.maxBytes ?? Number.POSITIVE_INFINITY));

  const sendWithRetry = async (items: T[]): Promise<void> => {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        await opts.send(items);
        if (!stopped) opts.onSent(items);
        return;
      } catch (err) {
        if (stopped) return;
        opts.onError(err, attempt);
        await new Promise<void>((r) => {
          const t = setTimeout(r, backoff(attempt));
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = undefined;
      }
    }
  };

  /** Takes the next batch off the buffer: at most maxBatch items and maxBytes bytes, at least one item. */
  const take = (): T[] => {
    const limit = maxBytes();
    let n = 0;
    let bytes = 0;
    while (n < buffer.length && n < opts.maxBatch) {
      const size = sizeOf(buffer[n]!);
      if (n > 0 && bytes + size > limit) break;
      bytes += size;
      n++;
    }
    const items = n === buffer.length ? buffer : buffer.slice(0, n);
    buffer = n === buffer.length ? [] : buffer.slice(n);
    bufferBytes = Math.max(0, bufferBytes - bytes);
    return items;
  };

  const drain = (): Promise<void> => {
    if (inFlight) return inFlight;
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (buffer.length === 0 || stopped) return Promise.resolve();
    inFlight = (async () => {
      while (buffer.length > 0 && !stopped) {
        const items = take();
        sending = items.length;
        await sendWithRetry(items);
        sending = 0;
      }
    })().finally(() => {
      inFlight = undefined;
      sending = 0;
    });
    return inFlight;
  };

  const flush = async (): Promise<void> => {
    while (!stopped && (inFlight || buffer.length > 0)) await drain();
  };

  return {
    add(item) {
      if (stopped) return;
      buffer.push(item);
      bufferBytes += sizeOf(item);
      if (inFlight) return;
      // Fire and forget: drain() does not reject (sendWithRetry retries every failed send), and
      // flush() and close() wait for the send in flight.
      if (buffer.length >= opts.maxBatch || bufferBytes >= maxBytes()) void drain();
      else if (!timer) timer = setTimeout(() => void drain(), opts.lingerMs);
    },
    flush,
    async close(timeoutMs) {
      let timeout: NodeJS.Timeout | undefined;
      const flushed = await Promise.race([flush().then(() => buffer.length === 0 && !inFlight), new Promise<false>((r) => (timeout = setTimeout(() => r(false), timeoutMs)))]);
      clearTimeout(timeout);
      stopped = true;
      wake?.();
      if (timer) clearTimeout(timer);
      return flushed;
    },
    pending: () => buffer.length + sending,
  };
}
