/**
 * Micro-batching for the Kafka producer: items accumulate while a send is in flight and go out
 * together in the next one, so throughput grows with load instead of paying one round trip per
 * message. One send at a time keeps Kafka order per key. A failed send is retried with backoff and
 * its items are kept; their MQTT acks are only released by `onSent` after Kafka acknowledged them.
 */
export interface Batcher<T> {
  add(item: T): void;
  /** Sends everything added so far and resolves when it is acknowledged. */
  flush(): Promise<void>;
  pending(): number;
}

export interface BatcherOptions<T> {
  maxBatch: number;
  lingerMs: number;
  send(items: T[]): Promise<void>;
  onSent(items: T[]): void;
  onError(err: unknown, attempt: number): void;
  backoffMs?: (attempt: number) => number;
}

export function createBatcher<T>(opts: BatcherOptions<T>): Batcher<T> {
  let buffer: T[] = [];
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const backoff = opts.backoffMs ?? ((n: number) => Math.min(5000, 100 * 2 ** n));

  const sendWithRetry = async (items: T[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await opts.send(items);
        opts.onSent(items);
        return;
      } catch (err) {
        opts.onError(err, attempt);
        await new Promise((r) => setTimeout(r, backoff(attempt)));
      }
    }
  };

  const drain = (): Promise<void> => {
    if (inFlight) return inFlight;
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (buffer.length === 0) return Promise.resolve();
    inFlight = (async () => {
      while (buffer.length > 0) {
        const items = buffer.length <= opts.maxBatch ? buffer : buffer.slice(0, opts.maxBatch);
        buffer = buffer.length <= opts.maxBatch ? [] : buffer.slice(opts.maxBatch);
        await sendWithRetry(items);
      }
    })().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  return {
    add(item) {
      buffer.push(item);
      if (inFlight) return;
      if (buffer.length >= opts.maxBatch) void drain();
      else if (!timer) timer = setTimeout(() => void drain(), opts.lingerMs);
    },
    async flush() {
      while (inFlight || buffer.length > 0) await drain();
    },
    pending: () => buffer.length,
  };
}
