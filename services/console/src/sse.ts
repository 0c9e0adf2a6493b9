/**
 * Server-sent events (text/event-stream). One event is `id:`, `event:` and `data:` lines ended by
 * a blank line; data holding newlines becomes several `data:` lines, which the browser joins with
 * "\n". A line starting with ':' is a comment: used as heartbeat so proxies keep the stream open.
 */
export interface SseEvent {
  id?: string | number;
  event?: string;
  data: unknown;
  /** Reconnection delay the browser should use, ms. */
  retry?: number;
}

export function formatSse(e: SseEvent): string {
  let out = '';
  if (e.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(e.retry))}\n`;
  if (e.id !== undefined) out += `id: ${String(e.id).replace(/[\r\n]/g, '')}\n`;
  if (e.event !== undefined) out += `event: ${e.event.replace(/[\r\n]/g, '')}\n`;
  const text = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
  for (const line of text.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + '\n';
}

export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

/**
 * Recent change events with increasing ids, so a browser that reconnects with Last-Event-ID gets
 * what it missed. When the id is older than the buffer (or unknown, e.g. after a console restart)
 * `since` returns undefined and the caller sends a fresh snapshot instead.
 */
export function createEventLog<T>(capacity: number) {
  const events: { id: number; event: string; data: T }[] = [];
  let next = 1;
  // Ids are prefixed with a per-start epoch so an id from a previous console process never matches.
  const epoch = Date.now().toString(36);
  return {
    epoch,
    append(event: string, data: T): { id: string; event: string; data: T } {
      const e = { id: next++, event, data };
      events.push(e);
      if (events.length > capacity) events.shift();
      return { id: `${epoch}-${e.id}`, event, data };
    },
    lastId(): string {
      return `${epoch}-${next - 1}`;
    },
    since(lastEventId: string | undefined): { id: string; event: string; data: T }[] | undefined {
      if (!lastEventId) return undefined;
      const m = /^([0-9a-z]+)-(\d+)$/.exec(lastEventId);
      if (!m || m[1] !== epoch) return undefined;
      const seen = Number(m[2]);
      if (seen > next - 1) return undefined;
      if (seen === next - 1) return [];
      const first = events[0];
      if (!first || first.id > seen + 1) return undefined;
      return events.filter((e) => e.id > seen).map((e) => ({ id: `${epoch}-${e.id}`, event: e.event, data: e.data }));
    },
  };
}
