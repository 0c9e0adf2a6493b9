/**
 * Static files held in memory (the UI is a handful of small files): served with a strong ETag and
 * 304 on If-None-Match. Own files (/static/) are revalidated on every use (`no-cache`) so a new
 * console version is picked up at once; the vendored uPlot (/vendor/) is versioned by its package
 * and cached for a day.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
});

export interface StaticFile {
  body: Buffer;
  contentType: string;
  etag: string;
  cacheControl: string;
}

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export function staticFile(body: Buffer, name: string, cacheControl: string): StaticFile {
  return { body, contentType: contentTypeFor(name), etag: `"${createHash('sha1').update(body).digest('base64url')}"`, cacheControl };
}

/** Every file of `dir` (not recursive) keyed by `${urlPrefix}${name}`. */
export async function loadDir(dir: string, urlPrefix: string, cacheControl: string, only?: readonly string[]): Promise<Map<string, StaticFile>> {
  const out = new Map<string, StaticFile>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || (only && !only.includes(entry.name))) continue;
    out.set(`${urlPrefix}${entry.name}`, staticFile(await readFile(path.join(dir, entry.name)), entry.name, cacheControl));
  }
  return out;
}

/** 304 when the browser's copy is current. */
export function isFresh(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
}
