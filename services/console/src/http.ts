/**
 * Responses and request bodies of the console's node:http server. Every response carries the
 * security headers; JSON is never cached. A handler refuses a request by throwing an HttpError,
 * which becomes `{error: code, message}` with its status; anything else thrown is logged and
 * becomes a 500 `internal`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from '@pitwall/common';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Headers = Record<string, string | string[]>;

const BODY_LIMIT = 16 * 1024;

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  // uPlot sets element styles from script (CSSOM), which style-src does not restrict.
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
});

export function send(res: ServerResponse, status: number, body: string | Buffer, headers: Headers = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers });
  res.end(body);
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  send(res, status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
}

/** 303: the browser follows with a GET. */
export function redirect(res: ServerResponse, location: string, headers: Headers = {}): void {
  send(res, 303, '', { location, 'cache-control': 'no-store', ...headers });
}

export function notFoundText(res: ServerResponse): void {
  send(res, 404, 'not found', { 'content-type': 'text/plain; charset=utf-8' });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new HttpError(413, 'too_large', `request body over ${BODY_LIMIT} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The body as fields: a JSON object or an HTML form; an empty body is no fields. */
export async function formOrJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (text.trim() === '') return {};
  if (type === 'application/json') {
    try {
      const v: unknown = JSON.parse(text);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new HttpError(400, 'bad_request', 'body must be a JSON object');
  }
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  throw new HttpError(415, 'unsupported_media_type', 'send application/json or application/x-www-form-urlencoded');
}

/** Runs `handle` for every request and turns what it throws into the error response. */
export function requestListener(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, log: Logger): RequestListener {
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : undefined;
      if (!e) log.error('request failed', { method: req.method, url: req.url, err });
      if (res.headersSent) return void res.end();
      json(res, e?.status ?? 500, { error: e?.code ?? 'internal', message: e?.message ?? 'internal error; see the console log' });
    });
  };
}
