/**
 * The partition state as it was before the packed event store (commit 828ee20): a Map of events per
 * window, a Map of windows per vehicle. Kept verbatim, below this comment, as the reference the
 * differential test (store-equivalence.test.ts) compares the packed state with, decision for
 * decision and bit for bit. Not used by the service.
 */
import { computeFeatures, isWindowClosed, windowStartsFor, type WindowDef } from '@pitwall/common';

export interface StoredEvent {
  ts: number;
  values: Float64Array;
}

interface OpenWindow {
  start: number;
  firstOffset: bigint;
  /** The partition clock just before firstOffset was processed (a resume from firstOffset starts there). */
  clockBefore: number;
  events: Map<number, StoredEvent>;
}

interface Vehicle {
  windows: Map<number, OpenWindow>;
  /** Greatest event time added to this vehicle's windows. */
  maxTs: number;
  /** Partition clock when the vehicle's last reading was added. */
  lastSeen: number;
}

export interface ClosedWindow {
  vehicleId: string;
  start: number;
  end: number;
  eventCount: number;
  features: Float64Array;
}

export type AddResult = 'added' | 'duplicate' | 'late' | 'replayed';

/** A floor set (number) or dropped (null), to be written to the changelog. */
export interface FloorChange {
  vehicleId: string;
  floor: number | null;
}

/** What a consumer resuming a partition knows from the commit metadata. */
export interface Resume {
  /** Partition clock (greatest received_at) just before the committed offset. */
  clock: number;
  /** Offsets below this were processed before the commit; re-reading them is a replay, not lateness. */
  replayUntil: bigint;
  /** Partition watermark of a v1 commit (before per-vehicle event time): closes windows during the replay only. */
  legacyWatermark?: number;
}

export interface PartitionStateOptions {
  resume?: Resume;
  /** Floors as committed (from the changelog). */
  floors?: ReadonlyMap<string, number>;
  /** Close a vehicle's windows once it has added nothing for this long in arrival time; 0 = never. */
  vehicleIdleMs?: number;
}

export interface PartitionState {
  /** Greatest received_at seen (the partition's arrival-time clock). */
  readonly clock: number;
  add(vehicleId: string, ts: number, values: Float64Array, offset: bigint, receivedAt?: number): AddResult;
  /** Removes and returns every closed window not yet emitted, oldest first. */
  drainClosed(): ClosedWindow[];
  /** Removes and returns the floor changes since the last call (none for replayed decisions). */
  drainFloorChanges(): FloorChange[];
  /** Ignition off: closes every open window of the vehicle now. Returns how many it closed. */
  closeVehicle(vehicleId: string, offset: bigint): number;
  /**
   * An idle marker in the log, appended at wall time `time`: advances the arrival clock to it and
   * closes the vehicles silent for vehicleIdleMs since (with vehicleIdleMs 0, every open window).
   * Returns how many windows it closed.
   */
  idleTick(time: number, offset: bigint): number;
  /** Closes every open window now. Returns how many it closed. */
  closeAll(offset: bigint): number;
  /** Offset to commit and the resume metadata that goes with it; `next` is the next offset to process. */
  commitPoint(next: bigint): { offset: bigint; resume: Resume };
  /** How far the vehicle's windows are closed: its greatest event time or its floor, whichever is later. */
  vehicleTime(vehicleId: string): number;
  openWindows(): number;
  vehicles(): number;
  floors(): number;
}

export const NO_RESUME: Resume = Object.freeze({ clock: Number.NEGATIVE_INFINITY, replayUntil: 0n });

export function createPartitionState(def: WindowDef, opts: PartitionStateOptions = {}): PartitionState {
  const resume = opts.resume ?? NO_RESUME;
  const idleMs = opts.vehicleIdleMs ?? 0;
  // Insertion order = order of lastSeen (re-inserted on every added reading, and lastSeen is the
  // non-decreasing clock), so idle vehicles are always at the front.
  const active = new Map<string, Vehicle>();
  const floors = new Map<string, number>(opts.floors ?? []);
  let clock = resume.clock;
  let open = 0;
  const pending: ClosedWindow[] = [];
  const floorChanges = new Map<string, number | null>();

  const replaying = (offset: bigint): boolean => offset < resume.replayUntil;
  const emit = (vehicleId: string, w: OpenWindow, offset: bigint): void => {
    open--;
    if (replaying(offset)) return;
    pending.push({ vehicleId, start: w.start, end: w.start + def.sizeMs, eventCount: w.events.size, features: computeFeatures([...w.events.values()]) });
  };
  const setFloor = (vehicleId: string, floor: number | null, offset: bigint): void => {
    if (floor === null) floors.delete(vehicleId);
    else floors.set(vehicleId, floor);
    if (!replaying(offset)) floorChanges.set(vehicleId, floor);
  };
  /** Closes all windows of a vehicle and leaves a floor at the end of the latest. */
  const closeAllOf = (vehicleId: string, v: Vehicle, offset: bigint): number => {
    let floor = floors.get(vehicleId) ?? Number.NEGATIVE_INFINITY;
    const windows = [...v.windows.values()].sort((a, b) => a.start - b.start);
    for (const w of windows) {
      emit(vehicleId, w, offset);
      floor = Math.max(floor, w.start + def.sizeMs);
    }
    active.delete(vehicleId);
    setFloor(vehicleId, floor, offset);
    return windows.length;
  };
  const closeIdle = (offset: bigint): number => {
    if (idleMs <= 0) return 0;
    let n = 0;
    for (const [vehicleId, v] of active) {
      if (v.lastSeen + idleMs > clock) break;
      n += closeAllOf(vehicleId, v, offset);
    }
    return n;
  };
  const closedFor = (vehicleId: string, v: Vehicle | undefined, start: number, offset: bigint): boolean => {
    const end = start + def.sizeMs;
    if (end <= (floors.get(vehicleId) ?? Number.NEGATIVE_INFINITY)) return true;
    if (v && isWindowClosed(def, start, v.maxTs)) return true;
    return replaying(offset) && resume.legacyWatermark !== undefined && isWindowClosed(def, start, resume.legacyWatermark);
  };

  return {
    get clock() {
      return clock;
    },
    add(vehicleId, ts, values, offset, receivedAt) {
      const clockBefore = clock;
      if (receivedAt !== undefined && receivedAt > clock) {
        clock = receivedAt;
        closeIdle(offset);
      }
      let v = active.get(vehicleId);
      let result: AddResult = 'late';
      for (const start of windowStartsFor(def, ts)) {
        if (closedFor(vehicleId, v, start, offset)) continue;
        if (!v) {
          v = { windows: new Map(), maxTs: Number.NEGATIVE_INFINITY, lastSeen: clock };
          active.set(vehicleId, v);
        }
        let w = v.windows.get(start);
        if (!w) {
          w = { start, firstOffset: offset, clockBefore, events: new Map() };
          v.windows.set(start, w);
          open++;
        }
        if (w.events.has(ts)) {
          if (result === 'late') result = 'duplicate';
          continue;
        }
        w.events.set(ts, { ts, values });
        result = 'added';
      }
      if (result === 'added') {
        const vehicle = v!;
        vehicle.lastSeen = clock;
        active.delete(vehicleId);
        active.set(vehicleId, vehicle);
        if (ts > vehicle.maxTs) {
          vehicle.maxTs = ts;
          for (const w of [...vehicle.windows.values()].sort((a, b) => a.start - b.start)) {
            if (!isWindowClosed(def, w.start, ts)) continue;
            vehicle.windows.delete(w.start);
            emit(vehicleId, w, offset);
          }
          const floor = floors.get(vehicleId);
          // The car's own event time has passed the floor: its windows there are closed anyway.
          if (floor !== undefined && isWindowClosed(def, floor - def.sizeMs, ts)) setFloor(vehicleId, null, offset);
        }
      } else if (result === 'late' && replaying(offset)) result = 'replayed';
      return result;
    },
    closeVehicle(vehicleId, offset) {
      const v = active.get(vehicleId);
      return v ? closeAllOf(vehicleId, v, offset) : 0;
    },
    idleTick(time, offset) {
      if (idleMs <= 0) return this.closeAll(offset);
      if (!(time > clock)) return 0;
      clock = time;
      return closeIdle(offset);
    },
    closeAll(offset) {
      let n = 0;
      for (const [vehicleId, v] of [...active]) n += closeAllOf(vehicleId, v, offset);
      return n;
    },
    drainClosed() {
      return pending.splice(0).sort((a, b) => a.start - b.start || (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : 0));
    },
    drainFloorChanges() {
      const out = [...floorChanges].map(([vehicleId, floor]) => ({ vehicleId, floor }));
      floorChanges.clear();
      return out;
    },
    commitPoint(next) {
      let offset = next;
      let clockAt = clock;
      for (const v of active.values()) {
        for (const w of v.windows.values()) {
          if (w.firstOffset < offset) {
            offset = w.firstOffset;
            clockAt = w.clockBefore;
          }
        }
      }
      // A commit made while still replaying must not forget how far the earlier run got.
      const replayUntil = next > resume.replayUntil ? next : resume.replayUntil;
      return { offset, resume: { clock: clockAt, replayUntil } };
    },
    vehicleTime: (vehicleId) => Math.max(active.get(vehicleId)?.maxTs ?? Number.NEGATIVE_INFINITY, floors.get(vehicleId) ?? Number.NEGATIVE_INFINITY),
    openWindows: () => open,
    vehicles: () => active.size,
    floors: () => floors.size,
  };
}
