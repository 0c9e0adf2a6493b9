/**
 * Open windows of one input partition. Pure: no I/O, explicit event times, arrival times and offsets.
 *
 * Event time is per vehicle: a car's window closes once THAT car's greatest event time passes
 * end + grace (emission policy: isWindowClosed). A car's clock can only hurt its own windows, so a
 * reading stamped a day ahead no longer closes every other car's windows on the partition. Within
 * an open window an event repeating an event time of the same vehicle is counted once (MQTT QoS 1
 * redelivers).
 *
 * A car that stops sending would keep its last window open forever, so windows also close on
 * arrival time: the partition's clock is the greatest `received_at` (stamped by ingest, not by the
 * car) seen so far, and a vehicle whose last added reading arrived `vehicleIdleMs` or more before
 * that clock has all its windows closed. So does ignition off (closeVehicle). When a whole
 * partition is quiet, windowing appends an idle marker carrying its wall-clock time: the marker
 * advances the arrival clock (idleTick), so silent cars close after the same idle time whether or
 * not others still send, and an upstream stall shorter than that closes nothing. Such a close leaves a floor for the vehicle: later readings for windows
 * ending at or before it are late, instead of reopening a window that was already emitted.
 * Readings after the floor open new windows, so a car that comes back from a tunnel with buffered
 * readings gets them windowed; the floor is dropped once the car's own event time passes it.
 *
 * Everything decided here is a function of the records in offset order (event times and ingest's
 * received_at), never of the wall clock, so a replay makes the same decisions at the same places.
 *
 * Restart rule: the committed offset is the first offset of the earliest open window, committed
 * with the partition clock as it was just before that offset and with `replayUntil`, the next
 * offset processed. Floors live in a changelog (windowing.ts) and are restored as they were at the
 * commit. A consumer resuming from the committed offset rebuilds every window still open, because
 * all their events lie at or after it; windows it closes again below `replayUntil` were emitted
 * before and are not emitted again, and re-read readings below it are `replayed`, not late.
 *
 * Memory (issue 11): a window's readings are not objects. Each reading is one row of an event store
 * (ts and the 18 values, 152 bytes, in chunks of 1,024 rows of one Float64Array) shared by the
 * windows holding it (hopping windows), and each window holds its readings as a list of links
 * sorted by event time (8 bytes each, in Int32Array chunks). Exact values are kept, not running
 * sums: features are computed at close by computeFeatures over the same readings in the same
 * order, so they are bit-identical to computing them over the readings themselves. A vehicle's
 * open windows are a list sorted by start. About 1.9 KB per vehicle with one open window of 10
 * readings, against 5 KB with a Map and a Float64Array per reading (windowing.bench.ts, a).
 */
import { computeFeatures, isWindowClosed, SENSOR_NAMES, windowStartsFor, type WindowDef, type WindowEvent } from '@pitwall/common';

/** Entries per store chunk; store indices are (chunk << CHUNK_BITS) | entry, so they stay small integers. */
const CHUNK_BITS = 10;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;
/** End of a list. */
const NIL = -1;
const SENSORS = SENSOR_NAMES.length;
/** A reading's row: its event time, then its values in SENSOR_NAMES order. */
const ROW = 1 + SENSORS;

/**
 * Fixed-size entries in chunks, each with `ints` Int32 slots and `floats` Float64 slots. A free
 * entry's first int slot links the chunk's free list. New entries go to the lowest chunk with room,
 * so when the number of live entries falls, the last chunks empty out and are released (one empty
 * chunk is kept, so a count going back and forth over a chunk boundary does not reallocate).
 */
class Store {
  readonly ints: Int32Array[] = [];
  readonly floats: Float64Array[] = [];
  private readonly freeHead: number[] = [];
  private readonly freeCount: number[] = [];
  /** No chunk below this one has a free entry. */
  private lowest = 0;

  constructor(
    private readonly intSlots: number,
    private readonly floatSlots: number,
  ) {}

  alloc(): number {
    let c = this.lowest;
    while (c < this.freeCount.length && this.freeCount[c] === 0) c++;
    if (c === this.freeCount.length) this.grow();
    this.lowest = c;
    const e = this.freeHead[c]!;
    this.freeHead[c] = this.ints[c]![e * this.intSlots]!;
    this.freeCount[c]!--;
    return (c << CHUNK_BITS) | e;
  }

  free(i: number): void {
    const c = i >>> CHUNK_BITS;
    const e = i & MASK;
    this.ints[c]![e * this.intSlots] = this.freeHead[c]!;
    this.freeHead[c] = e;
    if (c < this.lowest) this.lowest = c;
    if (++this.freeCount[c]! < CHUNK) return;
    let n = this.freeCount.length;
    while (n >= 2 && this.freeCount[n - 1] === CHUNK && this.freeCount[n - 2] === CHUNK) {
      n--;
      this.ints.pop();
      this.floats.pop();
      this.freeHead.pop();
      this.freeCount.pop();
    }
    if (this.lowest > n) this.lowest = n;
  }

  private grow(): void {
    const ints = new Int32Array(CHUNK * this.intSlots);
    for (let e = 0; e < CHUNK; e++) ints[e * this.intSlots] = e + 1 < CHUNK ? e + 1 : NIL;
    this.ints.push(ints);
    if (this.floatSlots > 0) this.floats.push(new Float64Array(CHUNK * this.floatSlots));
    this.freeHead.push(0);
    this.freeCount.push(CHUNK);
  }
}

interface OpenWindow {
  start: number;
  firstOffset: bigint;
  /** The partition clock just before firstOffset was processed (a resume from firstOffset starts there). */
  clockBefore: number;
  /** Readings held (distinct event times). */
  count: number;
  /** First and last link of the window's readings, ascending by event time. */
  head: number;
  tail: number;
  /** The vehicle's next open window (greater start). */
  next: OpenWindow | null;
}

interface Vehicle {
  /** Open windows, ascending by start. */
  windows: OpenWindow | null;
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
  /** Values are copied (SENSOR_NAMES order; missing ones count as NaN, extra ones are ignored). */
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
  // Readings: int slot = how many windows hold the row; float slots = ts, values.
  const rows = new Store(1, ROW);
  // Window membership: int slots = row, next link.
  const links = new Store(2, 0);

  const rowTs = (row: number): number => rows.floats[row >>> CHUNK_BITS]![(row & MASK) * ROW]!;
  const linkRow = (link: number): number => links.ints[link >>> CHUNK_BITS]![(link & MASK) * 2]!;
  const linkNext = (link: number): number => links.ints[link >>> CHUNK_BITS]![(link & MASK) * 2 + 1]!;
  const setLinkNext = (link: number, next: number): void => {
    links.ints[link >>> CHUNK_BITS]![(link & MASK) * 2 + 1] = next;
  };
  const newRow = (ts: number, values: Float64Array): number => {
    const row = rows.alloc();
    const data = rows.floats[row >>> CHUNK_BITS]!;
    const at = (row & MASK) * ROW;
    data[at] = ts;
    if (values.length >= SENSORS) data.set(values.length === SENSORS ? values : values.subarray(0, SENSORS), at + 1);
    else {
      // computeFeatures reads a missing value as undefined, which every aggregate treats as NaN does.
      data.set(values, at + 1);
      data.fill(Number.NaN, at + 1 + values.length, at + ROW);
    }
    rows.ints[row >>> CHUNK_BITS]![row & MASK] = 0;
    return row;
  };
  /** Links the row into w, keeping event-time order; false if w already holds a reading at ts. */
  const insert = (w: OpenWindow, ts: number, row: number): boolean => {
    let prev = NIL;
    let next = NIL;
    if (w.tail !== NIL) {
      const last = rowTs(linkRow(w.tail));
      if (ts === last) return false;
      if (ts > last) prev = w.tail;
      else {
        // Out of order (or a redelivery): find the place from the front.
        next = w.head;
        while (next !== NIL) {
          const t = rowTs(linkRow(next));
          if (t === ts) return false;
          if (t > ts) break;
          prev = next;
          next = linkNext(next);
        }
      }
    }
    const link = links.alloc();
    const ints = links.ints[link >>> CHUNK_BITS]!;
    ints[(link & MASK) * 2] = row;
    ints[(link & MASK) * 2 + 1] = next;
    if (prev === NIL) w.head = link;
    else setLinkNext(prev, link);
    if (next === NIL) w.tail = link;
    rows.ints[row >>> CHUNK_BITS]![row & MASK]!++;
    w.count++;
    return true;
  };
  /** Releases the window's links and the rows no other window holds. */
  const release = (w: OpenWindow): void => {
    let link = w.head;
    while (link !== NIL) {
      const next = linkNext(link);
      const row = linkRow(link);
      const refs = rows.ints[row >>> CHUNK_BITS]!;
      if (--refs[row & MASK]! === 0) rows.free(row);
      links.free(link);
      link = next;
    }
    w.head = w.tail = NIL;
  };
  const features = (w: OpenWindow): Float64Array => {
    const events: WindowEvent[] = new Array<WindowEvent>(w.count);
    let i = 0;
    for (let link = w.head; link !== NIL; link = linkNext(link)) {
      const row = linkRow(link);
      const data = rows.floats[row >>> CHUNK_BITS]!;
      const at = (row & MASK) * ROW;
      events[i++] = { ts: data[at]!, values: data.subarray(at + 1, at + ROW) };
    }
    return computeFeatures(events);
  };

  const replaying = (offset: bigint): boolean => offset < resume.replayUntil;
  const emit = (vehicleId: string, w: OpenWindow, offset: bigint): void => {
    open--;
    if (!replaying(offset)) pending.push({ vehicleId, start: w.start, end: w.start + def.sizeMs, eventCount: w.count, features: features(w) });
    release(w);
  };
  const setFloor = (vehicleId: string, floor: number | null, offset: bigint): void => {
    if (floor === null) floors.delete(vehicleId);
    else floors.set(vehicleId, floor);
    if (!replaying(offset)) floorChanges.set(vehicleId, floor);
  };
  /** Closes all windows of a vehicle and leaves a floor at the end of the latest. */
  const closeAllOf = (vehicleId: string, v: Vehicle, offset: bigint): number => {
    let floor = floors.get(vehicleId) ?? Number.NEGATIVE_INFINITY;
    let n = 0;
    for (let w = v.windows; w !== null; w = w.next) {
      emit(vehicleId, w, offset);
      floor = Math.max(floor, w.start + def.sizeMs);
      n++;
    }
    v.windows = null;
    active.delete(vehicleId);
    setFloor(vehicleId, floor, offset);
    return n;
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
      let row = NIL;
      // Starts ascend, and so do the vehicle's windows: one walk along the list finds them all.
      let prev: OpenWindow | null = null;
      let cur: OpenWindow | null = v ? v.windows : null;
      for (const start of windowStartsFor(def, ts)) {
        if (closedFor(vehicleId, v, start, offset)) continue;
        if (!v) {
          v = { windows: null, maxTs: Number.NEGATIVE_INFINITY, lastSeen: clock };
          active.set(vehicleId, v);
        }
        while (cur !== null && cur.start < start) {
          prev = cur;
          cur = cur.next;
        }
        let w: OpenWindow;
        if (cur !== null && cur.start === start) w = cur;
        else {
          w = { start, firstOffset: offset, clockBefore, count: 0, head: NIL, tail: NIL, next: cur };
          if (prev === null) v.windows = w;
          else prev.next = w;
          cur = w;
          open++;
        }
        if (row === NIL) row = newRow(ts, values);
        if (!insert(w, ts, row)) {
          if (result === 'late') result = 'duplicate';
          continue;
        }
        result = 'added';
      }
      if (row !== NIL && rows.ints[row >>> CHUNK_BITS]![row & MASK] === 0) rows.free(row);
      if (result === 'added') {
        const vehicle = v!;
        vehicle.lastSeen = clock;
        active.delete(vehicleId);
        active.set(vehicleId, vehicle);
        if (ts > vehicle.maxTs) {
          vehicle.maxTs = ts;
          // Closed windows are a prefix of the list (isWindowClosed is monotone in start).
          let w = vehicle.windows;
          while (w !== null && isWindowClosed(def, w.start, ts)) {
            const next: OpenWindow | null = w.next;
            emit(vehicleId, w, offset);
            w.next = null;
            w = next;
          }
          vehicle.windows = w;
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
        for (let w = v.windows; w !== null; w = w.next) {
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
