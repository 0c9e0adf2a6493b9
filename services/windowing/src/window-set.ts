/**
 * Several window definitions over one input partition (WINDOW_SIZES_MS, e.g. 10 s and 120 s): one
 * PartitionState per definition, all fed the same records in the same order, presented as one
 * PartitionState. With a single definition it IS that definition's PartitionState, so the default
 * configuration runs exactly the code, state and output it always did.
 *
 * Each definition keeps its own readings (a reading in two definitions is stored twice: state grows
 * with the number of definitions), windows and floors. Rules where they meet:
 * - add: 'added' when any definition took the reading; else 'duplicate' or 'replayed' when any
 *   definition says so; 'late' only when every definition refused it as late, so the late topic
 *   holds the readings no window used.
 * - commitPoint: the earliest first offset over every definition's open windows, with the clock
 *   that goes with it; a definition whose own commit point is later re-reads the gap as a replay
 *   (below replayUntil nothing is emitted twice), exactly like a restart from an older commit.
 * - floors: the first definition's are keyed by vehicle id, as with a single window (so adding
 *   sizes after it keeps them); the others' by `<vehicle id>@<size ms>` ('@' is never in a vehicle
 *   id, common/vehicle-id.ts).
 * - vehicleTime (the late topic's watermark header) and clock are the first definition's.
 */
import type { WindowDef } from '@pitwall/common';
import { createPartitionState, type AddResult, type ClosedWindow, type FloorChange, type PartitionState, type PartitionStateOptions } from './partition-state.js';

/** A closed window and the definition it belongs to. */
export interface DefinedWindow extends ClosedWindow {
  def: WindowDef;
}

export interface WindowSetState extends Omit<PartitionState, 'drainClosed'> {
  /** Every definition's closed windows, ordered by start, then size, then vehicle. */
  drainClosed(): DefinedWindow[];
}

/** The changelog key of a vehicle's floor for definition `index` of `defs`. */
export function floorKey(defs: readonly WindowDef[], index: number, vehicleId: string): string {
  return index === 0 ? vehicleId : `${vehicleId}@${defs[index]!.sizeMs}`;
}

/** Splits changelog floors into one map per definition; keys of sizes not configured are dropped. */
export function splitFloors(defs: readonly WindowDef[], floors: ReadonlyMap<string, number>): Map<string, number>[] {
  const out = defs.map(() => new Map<string, number>());
  const bySize = new Map(defs.map((d, i) => [String(d.sizeMs), i]));
  for (const [key, floor] of floors) {
    const at = key.lastIndexOf('@');
    if (at < 0) out[0]!.set(key, floor);
    else {
      const i = bySize.get(key.slice(at + 1));
      if (i !== undefined && i > 0) out[i]!.set(key.slice(0, at), floor);
    }
  }
  return out;
}

const RANK: Readonly<Record<AddResult, number>> = { added: 3, duplicate: 2, replayed: 1, late: 0 };

export function createWindowSetState(defs: readonly WindowDef[], opts: PartitionStateOptions = {}): WindowSetState {
  if (defs.length === 0) throw new RangeError('at least one window definition is needed');
  if (defs.length === 1) {
    const def = defs[0]!;
    const state: PartitionState | WindowSetState = createPartitionState(def, opts);
    // drainClosed names the definition; everything else is the state itself.
    const drain = state.drainClosed.bind(state);
    state.drainClosed = (): DefinedWindow[] => drain().map((w) => Object.assign(w, { def }));
    return state as WindowSetState;
  }
  const floors = splitFloors(defs, opts.floors ?? new Map());
  const states = defs.map((def, i) => createPartitionState(def, { ...opts, floors: floors[i]! }));
  const sum = (f: (s: PartitionState) => number): number => states.reduce((n, s) => n + f(s), 0);
  return {
    get clock() {
      return states[0]!.clock;
    },
    add(vehicleId, ts, values, offset, receivedAt) {
      let result: AddResult = 'late';
      for (const s of states) {
        const r = s.add(vehicleId, ts, values, offset, receivedAt);
        if (RANK[r] > RANK[result]) result = r;
      }
      return result;
    },
    drainClosed() {
      const out: DefinedWindow[] = [];
      states.forEach((s, i) => {
        for (const w of s.drainClosed()) out.push(Object.assign(w, { def: defs[i]! }));
      });
      return out.sort((a, b) => a.start - b.start || a.def.sizeMs - b.def.sizeMs || (a.vehicleId < b.vehicleId ? -1 : a.vehicleId > b.vehicleId ? 1 : 0));
    },
    drainFloorChanges() {
      const out: FloorChange[] = [];
      states.forEach((s, i) => {
        for (const c of s.drainFloorChanges()) out.push({ vehicleId: floorKey(defs, i, c.vehicleId), floor: c.floor });
      });
      return out;
    },
    closeVehicle: (vehicleId, offset) => sum((s) => s.closeVehicle(vehicleId, offset)),
    idleTick: (time, offset) => sum((s) => s.idleTick(time, offset)),
    closeAll: (offset) => sum((s) => s.closeAll(offset)),
    commitPoint(next) {
      let best = states[0]!.commitPoint(next);
      for (const s of states.slice(1)) {
        const p = s.commitPoint(next);
        if (p.offset < best.offset) best = p;
      }
      return best;
    },
    vehicleTime: (vehicleId) => states[0]!.vehicleTime(vehicleId),
    openWindows: () => sum((s) => s.openWindows()),
    vehicles: () => Math.max(...states.map((s) => s.vehicles())),
    floors: () => sum((s) => s.floors()),
  };
}
