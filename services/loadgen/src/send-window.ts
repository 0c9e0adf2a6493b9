/**
 * At most `limit` QoS 1 publishes of a connection awaiting their PUBACK; the rest wait here, in
 * order. The limit is the broker's Receive Maximum from its CONNACK (MQTT 5, 3.2.2.3.3): a client
 * that exceeds it may be disconnected (HiveMQ does, with 0x93, at its default of 10), and neither
 * mqtt.js nor car-client.ts holds publishes to it by itself. Until a CONNACK says otherwise: the
 * protocol's 65,535.
 */
export interface SendWindow {
  /** Runs `send` now if the window has room, else when it has; `send` calls `done` on its PUBACK (or failure). */
  submit(send: (done: () => void) => void): void;
  /** A new limit (a CONNACK's receive maximum); a larger one lets waiting sends go at once. */
  setLimit(limit: number): void;
  /** Sent and not yet done. */
  inFlight(): number;
  /** Waiting for room. */
  waiting(): number;
}

export const PROTOCOL_RECEIVE_MAXIMUM = 65_535;

export function createSendWindow(limit = PROTOCOL_RECEIVE_MAXIMUM): SendWindow {
  let max = limit;
  let active = 0;
  const queue: Array<(done: () => void) => void> = [];
  let head = 0;
  const pump = (): void => {
    while (active < max && head < queue.length) {
      const send = queue[head]!;
      queue[head++] = undefined as unknown as (done: () => void) => void;
      start(send);
    }
    // Drop the consumed prefix now and then, not on every send.
    if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };
  const start = (send: (done: () => void) => void): void => {
    active++;
    let called = false;
    send(() => {
      if (called) return;
      called = true;
      active--;
      pump();
    });
  };
  return {
    submit(send) {
      if (active < max && head === queue.length) start(send);
      else {
        queue.push(send);
        pump();
      }
    },
    setLimit(n) {
      if (!Number.isInteger(n) || n < 1 || n > PROTOCOL_RECEIVE_MAXIMUM) throw new RangeError(`receive maximum must be an integer from 1 to ${PROTOCOL_RECEIVE_MAXIMUM}, got ${n}`);
      max = n;
      pump();
    },
    inFlight: () => active,
    waiting: () => queue.length - head,
  };
}
