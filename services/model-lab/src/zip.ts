/**
 * A small reader of zip archives held in memory, enough for Keras .keras files: the central
 * directory (ZIP64 included), stored and deflated entries (node:zlib), CRC-32 checked. No
 * encryption, no multi-disk archives. Errors go through the caller's `fail`, so they carry the
 * caller's error class and file.
 */
import { inflateRawSync } from 'node:zlib';

export type ZipFail = (message: string, cause?: unknown) => Error;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the entry's local header. */
  offset: number;
}

/** Every archive starts with a local file header (or, when empty, the end record). */
export const ZIP_SIGNATURE = Buffer.from('PK\x03\x04', 'latin1');

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
/** Largest entry inflated: 2 GiB, far above any model a scorer can hold in memory. */
export const MAX_ENTRY_BYTES = 2 ** 31;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u64 = (buf: Buffer, at: number): number => Number(buf.readBigUInt64LE(at));

/** The archive's entries by name, from its central directory. */
export function zipEntries(buf: Buffer, fail: ZipFail): Map<string, ZipEntry> {
  const within = (at: number, len: number, what: string): void => {
    if (at < 0 || at + len > buf.length) throw fail(`not a valid zip archive: ${what} lies outside the file`);
  };
  // The end of central directory record: 22 bytes plus a comment of up to 65535 bytes.
  let eocd = -1;
  for (let at = buf.length - 22; at >= Math.max(0, buf.length - 22 - MAX16); at--) {
    if (buf.readUInt32LE(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw fail('not a valid zip archive: no end of central directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let size = buf.readUInt32LE(eocd + 12);
  let offset = buf.readUInt32LE(eocd + 16);
  if (buf.readUInt16LE(eocd + 4) !== 0 || buf.readUInt16LE(eocd + 6) !== 0) throw fail('multi-disk zip archives are not supported');
  if (count === MAX16 || size === MAX32 || offset === MAX32) {
    const locator = eocd - 20;
    within(locator, 20, 'the ZIP64 locator');
    if (buf.readUInt32LE(locator) !== ZIP64_LOCATOR) throw fail('not a valid zip archive: ZIP64 end record missing');
    const z = u64(buf, locator + 8);
    within(z, 56, 'the ZIP64 end record');
    if (buf.readUInt32LE(z) !== ZIP64_EOCD) throw fail('not a valid zip archive: bad ZIP64 end record');
    count = u64(buf, z + 32);
    size = u64(buf, z + 40);
    offset = u64(buf, z + 48);
  }
  within(offset, size, 'the central directory');
  const entries = new Map<string, ZipEntry>();
  let at = offset;
  for (let i = 0; i < count; i++) {
    within(at, 46, 'a central directory entry');
    if (buf.readUInt32LE(at) !== CENTRAL) throw fail('not a valid zip archive: bad central directory entry');
    const flags = buf.readUInt16LE(at + 8);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    within(at + 46, nameLen + extraLen + commentLen, 'a central directory entry');
    const name = buf.toString(flags & 0x800 ? 'utf8' : 'latin1', at + 46, at + 46 + nameLen);
    if (flags & 1) throw fail(`zip entry ${name} is encrypted`);
    const e: ZipEntry = {
      name,
      method: buf.readUInt16LE(at + 10),
      crc32: buf.readUInt32LE(at + 16),
      compressedSize: buf.readUInt32LE(at + 20),
      size: buf.readUInt32LE(at + 24),
      offset: buf.readUInt32LE(at + 42),
    };
    // ZIP64 extended information (id 1): the 8-byte values of the fields saturated above, in this order.
    for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
      const id = buf.readUInt16LE(x);
      const len = buf.readUInt16LE(x + 2);
      if (id === 1) {
        let p = x + 4;
        for (const field of ['size', 'compressedSize', 'offset'] as const) {
          if (e[field] === MAX32 && p + 8 <= x + 4 + len) {
            e[field] = u64(buf, p);
            p += 8;
          }
        }
      }
      x += 4 + len;
    }
    entries.set(name, e);
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The uncompressed bytes of an entry, checked against its size and CRC-32. */
export function zipRead(buf: Buffer, e: ZipEntry, fail: ZipFail): Buffer {
  if (e.offset + 30 > buf.length || buf.readUInt32LE(e.offset) !== LOCAL) throw fail(`zip entry ${e.name}: bad local header`);
  const start = e.offset + 30 + buf.readUInt16LE(e.offset + 26) + buf.readUInt16LE(e.offset + 28);
  if (start + e.compressedSize > buf.length) throw fail(`zip entry ${e.name} is truncated`);
  const raw = buf.subarray(start, start + e.compressedSize);
  let data: Buffer;
  if (e.method === 0) data = raw;
  else if (e.method === 8) {
    if (e.size > MAX_ENTRY_BYTES) throw fail(`zip entry ${e.name} declares ${e.size} bytes, more than the ${MAX_ENTRY_BYTES} a model file may hold`);
    try {
      // Never more than the entry declares: a few KB that inflate to gigabytes (a zip bomb) stop here.
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (cause) {
      const tooLarge = (cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      throw fail(tooLarge ? `zip entry ${e.name} inflates to more than the ${e.size} bytes it declares` : `zip entry ${e.name} does not inflate: ${(cause as Error).message}`, cause);
    }
  } else throw fail(`zip entry ${e.name} uses compression method ${e.method} (only stored and deflated entries are supported)`);
  if (data.length !== e.size || crc32(data) !== e.crc32) throw fail(`zip entry ${e.name} is corrupt (size or CRC-32 does not match)`);
  return data;
}
