/**
 * Open windows of one input partition. Pure: no I/O, explicit event times and offsets.
 *
 * Watermark = greatest event time seen on the partition. A window is emitted once, when the
 * watermark passes end + grace (emission policy: isWindowClosed). Within an open window an event
 * repeating an event time of the same vehicle is counted once (MQTT QoS 1 redelivers).
 *
 * Restart rule (what makes recovery correct): the committed offset of a partition is the first
 * offset of its earliest open window, committed together with the watermark at that moment. Every
 * window closed by that watermark was emitted before the commit; every window still open has all its
 * events at or after the committed offset. So a consumer resuming from the committed offset with
 * that watermark rebuilds exactly the open windows and skips events of windows already emitted.
 *
 * Ignition off closes a vehicle's open windows at once (closeVehicle). Later events of that vehicle
 * for those windows are late. On a replay (offset below replayUntil) the same ignition-off closes
 * the same windows again, but they are not emitted a second time: the original run did.
 * Limitation: if the ignition-off itself lies before the committed offset, its "closed through"
 * mark is not restored, so a late event for those windows arriving after a restart would open a new
 * partial window instead of being reported late.
 */
import { computeFeatures, isWindowClosed, windowStartsFor, type WindowDef } from '@pitwall/common';

export interface StoredEvent {
  ts: number;
  values: Float64Array;
}

interface OpenWindow {
  start: number;
  firstOffset: bigint;
  events: Map<number, StoredEvent>;
}

export interface ClosedWindow {
  vehicleId: string;
  start: number;
  end: number;
  eventCount: number;
  features: Float64Array;
}

export type AddResult = 'added' | 'duplicate' | 'late' | 'replayed';

export interface PartitionState {
  readonly watermark: number;
  add(vehicleId: string, ts: number, values: Float64Array, offset: bigint): AddResult;
  /** Removes and returns every window the watermark or an ignition-off has closed, oldest first. */
  drainClosed(): ClosedWindow[];
  /** Ignition off: closes every open window of the vehicle now. Returns how many it closed. */
  closeVehicle(vehicleId: string, offset: bigint): number;
  /** The partition went quiet (an idle marker in the log): closes every open window now. */
  closeAll(offset: bigint): number;
  /** Offset to commit: first offset of the earliest open window, or `next` when none is open. */
  commitOffset(next: bigint): bigint;
  openWindows(): number;
  vehicles(): number;
}

/** What a consumer resuming a partition knows from the commit metadata. */
export interface Resume {
  watermark: number;
  /** Offsets below this were processed before the commit; re-reading them is a replay, not lateness. */
  replayUntil: bigint;
}

export function createPartitionState(def: WindowDef, resume: Resume = { watermark: Number.NEGATIVE_INFINITY, replayUntil: 0n }): PartitionState {
  const byVehicle = new Map<string, Map<number, OpenWindow>>();
  let watermark = resume.watermark;
  let open = 0;
  // Windows closed by ignition-off, waiting for drainClosed; and per vehicle the end of the last
  // window so closed, until the watermark makes that mark redundant.
  const pending: ClosedWindow[] = [];
  const closedThrough = new Map<string, number>();
  const close = (vehicleId: string, w: OpenWindow): ClosedWindow => ({
    vehicleId,
    start: w.start,
    end: w.start + def.sizeMs,
    eventCount: w.events.size,
    features: computeFeatures([...w.events.values()]),
  });
  return {
    get watermark() {
      return watermark;
    },
    add(vehicleId, ts, values, offset) {
      const starts = windowStartsFor(def, ts);
      let windows = byVehicle.get(vehicleId);
      let result: AddResult = 'late';
      const through = closedThrough.get(vehicleId) ?? Number.NEGATIVE_INFINITY;
      for (const start of starts) {
        if (isWindowClosed(def, start, watermark) || start + def.sizeMs <= through) continue;
        if (!windows) {
          windows = new Map();
          byVehicle.set(vehicleId, windows);
        }
        let w = windows.get(start);
        if (!w) {
          w = { start, firstOffset: offset, events: new Map() };
          windows.set(start, w);
          open++;
        }
        if (w.events.has(ts)) {
          if (result === 'late') result = 'duplicate';
          continue;
        }
        w.events.set(ts, { ts, values });
        result = 'added';
      }
      if (result === 'late' && offset < resume.replayUntil) result = 'replayed';
      if (ts > watermark) watermark = ts;
      return result;
    },
    closeVehicle(vehicleId, offset) {
      const windows = byVehicle.get(vehicleId);
      if (!windows) return 0;
      const replay = offset < resume.replayUntil;
      let through = closedThrough.get(vehicleId) ?? Number.NEGATIVE_INFINITY;
      for (const w of windows.values()) {
        if (!replay) pending.push(close(vehicleId, w));
        through = Math.max(through, w.start + def.sizeMs);
        open--;
      }
      const n = windows.size;
      byVehicle.delete(vehicleId);
      closedThrough.set(vehicleId, through);
      return n;
    },
    closeAll(offset) {
      let n = 0;
      for (const vehicleId of [...byVehicle.keys()]) n += this.closeVehicle(vehicleId, offset);
      return n;
    },
    drainClosed() {
      const closed: ClosedWindow[] = pending.splice(0);
      for (const [vehicleId, through] of closedThrough) {
        if (isWindowClosed(def, through - def.sizeMs, watermark)) closedThrough.delete(vehicleId);
      }
      for (const [vehicleId, windows] of byVehicle) {
        for (const [start, w] of windows) {
          if (!isWindowClosed(def, start, watermark)) continue;
          windows.delete(start);
          open--;
          closed.push(close(vehicleId, w));
        }
        if (windows.size === 0) byVehicle.delete(vehicleId);
      }
      return closed.sort((a, b) => a.start - b.start || (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : 0));
    },
    commitOffset(next) {
      let min = next;
      for (const windows of byVehicle.values()) for (const w of windows.values()) if (w.firstOffset < min) min = w.firstOffset;
      return min;
    },
    openWindows: () => open,
    vehicles: () => byVehicle.size,
  };
}

