/**
 * Static files held in memory (the UI is a handful of small files): served with a strong ETag and
 * 304 on If-None-Match. Own files (/static/) are revalidated on every use (`no-cache`) so a new
 * console version is picked up at once; the vendored uPlot (/vendor/) is versioned by its package
 * and cached for a day.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from './http.js';

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

export function defaultPublicDir(): string {
  return fileURLToPath(new URL('../../public/', import.meta.url));
}

function uplotDir(): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

/** The console's files: `publicDir` as /static/, uPlot as /vendor/ (loaded by `load`, at start). */
export function createStaticFiles() {
  let files = new Map<string, StaticFile>();
  return {
    async load(publicDir: string): Promise<void> {
      files = new Map([...(await loadDir(publicDir, '/static/', 'no-cache')), ...(await loadDir(uplotDir(), '/vendor/', 'public, max-age=86400', ['uPlot.esm.js', 'uPlot.min.css']))]);
    },
    /** Sends the file (200, or 304 when fresh; no body for HEAD); false, and nothing sent, when there is none. */
    serve(req: IncomingMessage, res: ServerResponse, key: string, extra: Record<string, string> = {}): boolean {
      const f = files.get(key);
      if (!f) return false;
      const headers = { 'content-type': f.contentType, 'cache-control': f.cacheControl, etag: f.etag, ...extra };
      if (isFresh(req.headers['if-none-match'], f.etag)) send(res, 304, '', headers);
      else send(res, 200, req.method === 'HEAD' ? '' : f.body, headers);
      return true;
    },
  };
}

export type StaticFiles = ReturnType<typeof createStaticFiles>;
