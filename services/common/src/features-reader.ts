/**
 * Reads a `vehicle.features` body (Avro binary, any version of schemas/features) straight into a
 * window header and a Float32Array of the 108 features in FEATURE_NAMES order, without the generic
 * decoder's record object (108 boxed doubles per window, the largest allocation in scoring).
 *
 * The same bytes give the same values as avsc's decode with schema resolution: doubles as read
 * (float writers promoted), longs by avsc's varint rule and its safe-integer check, strings as
 * UTF-8. It never guesses: a writer schema with any field type outside the flat ones it knows
 * (string, int, long, float, double, boolean, null, a union of null with one of those) or without
 * every feature, or of another record name, compiles to `undefined`, and a body it cannot read exactly (truncated, trailing
 * bytes, a long beyond avsc's range, an unknown union branch) reads as `undefined`: the caller
 * then decodes it generically, which gives the record or the precise error.
 */
import type * as avro from 'avsc';
import { FEATURE_INDEX, FEATURE_NAMES } from './features.js';

/** The fields of a features record other than the features. */
export interface FeatureHeader {
  vehicle_id: string;
  window_start: number;
  window_end: number;
  event_count: number;
  window_size_ms: number | null;
  window_advance_ms: number | null;
}

/** Reads one body; fills `features` (FEATURE_NAMES order) and returns the header, or undefined (see above). */
export type FeaturesReader = (body: Buffer, features: Float32Array) => FeatureHeader | undefined;

type Prim = 'string' | 'int' | 'long' | 'float' | 'double' | 'boolean' | 'null';
const PRIMS = new Set<string>(['string', 'int', 'long', 'float', 'double', 'boolean', 'null']);
/** One writer field: its branches (one for a plain type; a union lists each) and where it goes. */
interface FieldOp {
  branches: Prim[];
  /** Index in FEATURE_NAMES, or a header field, or -1: read and dropped. */
  feature: number;
  header: keyof FeatureHeader | undefined;
}

/** What a header field may be written as (avsc's promotions: int to long; null only where the reader's union allows it). */
const HEADER_TYPES: Record<keyof FeatureHeader, readonly Prim[]> = {
  vehicle_id: ['string'],
  window_start: ['int', 'long'],
  window_end: ['int', 'long'],
  event_count: ['int'],
  window_size_ms: ['null', 'int', 'long'],
  window_advance_ms: ['null', 'int', 'long'],
};
const REQUIRED_HEADER: readonly (keyof FeatureHeader)[] = ['vehicle_id', 'window_start', 'window_end', 'event_count'];
/** avsc's LongType refuses magnitudes beyond this ("potential precision loss"). */
const AVSC_SAFE_LONG = 9007199254740990;

function primOf(t: unknown): Prim | undefined {
  if (typeof t === 'string') return PRIMS.has(t) ? (t as Prim) : undefined;
  if (t !== null && typeof t === 'object' && !Array.isArray(t)) {
    const type = (t as { type?: unknown }).type;
    // A logical type on a primitive (timestamp-millis) reads as the primitive: the codecs use no logical types.
    return typeof type === 'string' && PRIMS.has(type) ? (type as Prim) : undefined;
  }
  return undefined;
}

const cache = new WeakMap<object, FeaturesReader | null>();

/** The reader for bodies written with `writer`, or undefined when it is not a flat features schema. */
export function compileFeaturesReader(writer: avro.Schema): FeaturesReader | undefined {
  if (writer === null || typeof writer !== 'object') return undefined;
  const known = cache.get(writer);
  if (known !== undefined) return known ?? undefined;
  const reader = compile(writer);
  cache.set(writer, reader ?? null);
  return reader;
}

/** schemas/features' record: avsc resolves a writer of another name only through aliases, which this reader leaves to it. */
const RECORD_NAME = 'io.pitwall.features.VehicleFeatures';

function qualifiedName(schema: { name?: unknown; namespace?: unknown }): string {
  const name = String(schema.name);
  return name.includes('.') || typeof schema.namespace !== 'string' || schema.namespace === '' ? name : `${schema.namespace}.${name}`;
}

function compile(writer: object): FeaturesReader | undefined {
  const fields = (writer as { type?: unknown; fields?: unknown }).fields;
  if ((writer as { type?: unknown }).type !== 'record' || !Array.isArray(fields)) return undefined;
  if (qualifiedName(writer) !== RECORD_NAME) return undefined;
  const ops: FieldOp[] = [];
  const seenFeatures = new Set<number>();
  const seenHeader = new Set<string>();
  for (const f of fields as { name?: unknown; type?: unknown }[]) {
    const types = Array.isArray(f.type) ? f.type : [f.type];
    const branches = types.map(primOf);
    if (branches.some((b) => b === undefined)) return undefined;
    const name = String(f.name);
    const op: FieldOp = { branches: branches as Prim[], feature: -1, header: undefined };
    const feature = FEATURE_INDEX.get(name);
    if (feature !== undefined) {
      // The reader's type is double: a writer's double or float; anything else is a resolution avsc refuses.
      if (op.branches.length !== 1 || (op.branches[0] !== 'double' && op.branches[0] !== 'float')) return undefined;
      op.feature = feature;
      seenFeatures.add(feature);
    } else if (name in HEADER_TYPES) {
      const allowed = HEADER_TYPES[name as keyof FeatureHeader];
      if (!op.branches.every((b) => allowed.includes(b))) return undefined;
      op.header = name as keyof FeatureHeader;
      seenHeader.add(name);
    }
    ops.push(op);
  }
  if (seenFeatures.size !== FEATURE_NAMES.length || !REQUIRED_HEADER.every((h) => seenHeader.has(h))) return undefined;
  // Consecutive double features (all 108 in every version so far) are one run, copied at once.
  const steps: Step[] = [];
  for (const op of ops) {
    const last = steps.at(-1);
    if (op.feature >= 0 && op.branches[0] === 'double') {
      if (last !== undefined && 'run' in last) last.run.push(op.feature);
      else steps.push({ run: [op.feature] });
    } else {
      steps.push(op);
    }
  }
  const compiled = steps.map((st) => ('run' in st ? { run: Int32Array.from(st.run) } : st));
  return (body, out) => read(compiled, body, out);
}

type Step = FieldOp | { run: number[] };
type CompiledStep = FieldOp | { run: Int32Array };

/** Aligned scratch for runs of doubles: the body's bytes copied in, read as float64 (little-endian machines). */
let scratch = new Float64Array(128);
let scratchBytes = new Uint8Array(scratch.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** avsc's Tap.readLong (zigzag varint; float arithmetic past 28 bits), with the buffer's end checked. */
function readLong(body: Buffer, at: { pos: number }): number | undefined {
  let n = 0;
  let k = 0;
  let b: number;
  let pos = at.pos;
  do {
    if (pos >= body.length) return undefined;
    b = body[pos++]!;
    n |= (b & 0x7f) << k;
    k += 7;
  } while (b & 0x80 && k < 28);
  let out: number;
  if (b & 0x80) {
    let f = n;
    let fk = 268435456;
    do {
      if (pos >= body.length) return undefined;
      b = body[pos++]!;
      f += (b & 0x7f) * fk;
      fk *= 128;
    } while (b & 0x80);
    out = (f % 2 ? -(f + 1) : f) / 2;
  } else {
    out = (n >> 1) ^ -(n & 1);
  }
  at.pos = pos;
  return out;
}

function read(steps: readonly CompiledStep[], body: Buffer, out: Float32Array): FeatureHeader | undefined {
  const at = { pos: 0 };
  const header: FeatureHeader = { vehicle_id: '', window_start: 0, window_end: 0, event_count: 0, window_size_ms: null, window_advance_ms: null };
  for (const op of steps) {
    if ('run' in op) {
      const n = op.run.length;
      if (at.pos + 8 * n > body.length) return undefined;
      if (LITTLE_ENDIAN) {
        if (scratch.length < n) {
          scratch = new Float64Array(n);
          scratchBytes = new Uint8Array(scratch.buffer);
        }
        scratchBytes.set(body.subarray(at.pos, at.pos + 8 * n));
        for (let i = 0; i < n; i++) out[op.run[i]!] = scratch[i]!;
      } else {
        for (let i = 0; i < n; i++) out[op.run[i]!] = body.readDoubleLE(at.pos + 8 * i);
      }
      at.pos += 8 * n;
      continue;
    }
    let type = op.branches[0]!;
    if (op.branches.length > 1) {
      const branch = readLong(body, at);
      if (branch === undefined || branch < 0 || branch >= op.branches.length) return undefined;
      type = op.branches[branch]!;
    }
    let value: number | string | boolean | null;
    switch (type) {
      case 'double':
        if (at.pos + 8 > body.length) return undefined;
        value = body.readDoubleLE(at.pos);
        at.pos += 8;
        break;
      case 'float':
        if (at.pos + 4 > body.length) return undefined;
        value = body.readFloatLE(at.pos);
        at.pos += 4;
        break;
      case 'int':
      case 'long': {
        const n = readLong(body, at);
        if (n === undefined || (type === 'long' && (n > AVSC_SAFE_LONG || n < -AVSC_SAFE_LONG))) return undefined;
        value = n;
        break;
      }
      case 'string': {
        const len = readLong(body, at);
        if (len === undefined || len < 0 || at.pos + len > body.length) return undefined;
        value = body.toString('utf8', at.pos, at.pos + len);
        at.pos += len;
        break;
      }
      case 'boolean':
        if (at.pos >= body.length) return undefined;
        value = body[at.pos++] !== 0;
        break;
      case 'null':
        value = null;
        break;
    }
    if (op.feature >= 0) out[op.feature] = value as number;
    else if (op.header !== undefined) (header as unknown as Record<string, unknown>)[op.header] = value;
  }
  return at.pos === body.length ? header : undefined;
}
