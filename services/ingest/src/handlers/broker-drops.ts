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

/**
 * The $SYS messages' handler: true when `topic` was one of them (nothing else to do with it). The
 * gauge reads 0 once the broker's $SYS is seen, then the broker's count; each increase is logged as
 * an error.
 */
export function createBrokerDropsHandler(deps: {
  gauge: () => { set(value: number): void };
  log: { error(message: string, fields?: Record<string, unknown>): void };
}): (topic: string, payload: Buffer) => boolean {
  const drops = createDropTracker();
  let reported = false;
  return (topic, payload) => {
    if (topic === BROKER_UPTIME_TOPIC) {
      if (!reported) deps.gauge().set(0);
      reported = true;
      return true;
    }
    if (topic !== BROKER_DROPS_TOPIC) return false;
    const seen = drops.observe(payload);
    if (!seen) return true;
    reported = true;
    deps.gauge().set(seen.total);
    if (seen.increase > 0) {
      deps.log.error('the MQTT broker dropped messages on its queue limits: readings it acknowledged to cars may be lost', {
        dropped: seen.increase,
        droppedSinceBrokerStart: seen.total,
        fix: 'raise max_queued_messages / max_queued_bytes, or add ingest capacity (docs/guarantees.md, Overload)',
      });
    }
    return true;
  };
}
