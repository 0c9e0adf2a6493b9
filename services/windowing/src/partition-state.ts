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
 */
import { computeFeatures, isWindowClosed, SENSOR_NAMES, windowStartsFor, type WindowDef } from '@pitwall/common';

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
  /** Removes and returns every window the watermark has closed, oldest first. */
  drainClosed(): ClosedWindow[];
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
  return {
    get watermark() {
      return watermark;
    },
    add(vehicleId, ts, values, offset) {
      const starts = windowStartsFor(def, ts);
      let windows = byVehicle.get(vehicleId);
      let result: AddResult = 'late';
      for (const start of starts) {
        if (isWindowClosed(def, start, watermark)) continue;
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
    drainClosed() {
      const closed: ClosedWindow[] = [];
      for (const [vehicleId, windows] of byVehicle) {
        for (const [start, w] of windows) {
          if (!isWindowClosed(def, start, watermark)) continue;
          windows.delete(start);
          open--;
          closed.push({
            vehicleId,
            start,
            end: start + def.sizeMs,
            eventCount: w.events.size,
            features: computeFeatures([...w.events.values()]),
          });
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

export const SENSOR_COUNT = SENSOR_NAMES.length;
