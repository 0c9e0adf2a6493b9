/**
 * Handler for Mosquitto's `$SYS/broker/publish/messages/dropped`: how many messages the broker has
 * dropped since it started, on its queue or in-flight limits, as a decimal string. A QoS 1 reading
 * the broker acknowledged to a car and then dropped from ingest's queue is lost and nothing
 * downstream can notice, so ingest reports every increase as an error and exports the count. A
 * restarted broker counts from 0 again.
 *
 * Mosquitto publishes it only when it changes (its retained copy expires), so a quiet broker may
 * never send it to a subscriber that came later. `$SYS/broker/uptime`, sent every sys_interval
 * (10 s), shows that the broker's $SYS reaches ingest at all: until a drop is reported, the count
 * is 0 from then on.
 */
export const BROKER_DROPS_TOPIC = '$SYS/broker/publish/messages/dropped';
export const BROKER_UPTIME_TOPIC = '$SYS/broker/uptime';

export interface DropObservation {
  /** The broker's count since it started. */
  readonly total: number;
  /** Dropped since the previous observation (since the broker started, for the first one). */
  readonly increase: number;
}

/** Follows the broker's counter; undefined for a payload that is not a count. */
export function createDropTracker(): { observe(payload: Buffer): DropObservation | undefined } {
  let last: number | undefined;
  return {
    observe(payload) {
      const text = payload.toString('utf8').trim();
      if (!/^\d{1,15}$/.test(text)) return undefined;
      const total = Number(text);
      // Lower than before: the broker restarted and counts from 0.
      const increase = last === undefined || total < last ? total : total - last;
      last = total;
      return { total, increase };
    },
  };
}
