/**
 * Avro in the Confluent wire format, through a Confluent-compatible schema registry (Apicurio's
 * /apis/ccompat/v7 here). Wire format: byte 0 = magic 0, bytes 1-4 = schema id (big-endian), then the
 * Avro binary body. Schemas live as versioned files in schemas/<record>/vN.avsc; the service
 * registers the version it writes under the subject `<topic>-value` (TopicNameStrategy) and decodes
 * any registered writer version into the reader schema it was built with.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import avro from 'avsc';
import { InvalidInputError, PitwallError, TransientError } from './errors.js';
import { repoDir } from './paths.js';

/** The repository's schemas/ folder. */
export function defaultSchemasDir(): string {
  return repoDir(import.meta.url, 'schemas');
}

export async function loadSchemaFile(schemasDir: string, record: string, version: number): Promise<avro.Schema> {
  const file = path.join(schemasDir, record, `v${version}.avsc`);
  return JSON.parse(await readFile(file, 'utf8')) as avro.Schema;
}

export interface AvroCodec<T> {
  /** Schema id the codec writes with. */
  readonly schemaId: number;
  encode(value: T): Buffer;
  /** Decodes a Confluent-framed buffer written with any registered version of the subject. */
  decode(buf: Buffer): Promise<T>;
  /**
   * The schema a Confluent-framed buffer was written with, for readers of their own: fetched once
   * per id, then returned without a promise.
   */
  writerSchema(buf: Buffer): avro.Schema | Promise<avro.Schema>;
}

/** The narrow view of a registry that codecs need; one contract, any Confluent-compatible registry. */
export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'NONE';

export interface SchemaStore {
  register(subject: string, schema: avro.Schema): Promise<number>;
  /** The id under which `schema` is registered in `subject`, or undefined: a read, any identity may. */
  lookup(subject: string, schema: avro.Schema): Promise<number | undefined>;
  /** Sets the subject's compatibility rule; later registrations that break it are refused. */
  setCompatibility(subject: string, level: Compatibility): Promise<void>;
  getSchema(id: number): Promise<avro.Schema>;
}

/** HTTP basic credentials; the registry allows writes only to an identity with a write role. */
export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * How long a registry call keeps trying through connection failures and 5xx/429 answers (a
 * registry restarting, or busy while a fleet of pods starts) before it gives up; each try waits
 * twice as long as the one before, from `initialMs` up to 5 s. Every call is idempotent (reads,
 * and register and compatibility answer the same when repeated).
 */
export interface RegistryRetry {
  readonly deadlineMs: number;
  readonly initialMs: number;
}

export const DEFAULT_REGISTRY_RETRY: RegistryRetry = Object.freeze({ deadlineMs: 30_000, initialMs: 200 });

export function createSchemaStore(url: string, credentials?: RegistryCredentials, retry: RegistryRetry = DEFAULT_REGISTRY_RETRY): SchemaStore {
  const base = url.replace(/\/$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
  if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  // Answers other than a transient failure are returned as they are; the last transient failure
  // is returned (an HTTP answer) or thrown (no answer) once the deadline has passed.
  const call = async (op: string, what: string, p: string, init: { method: string; body?: unknown }): Promise<Response> => {
    const deadline = Date.now() + retry.deadlineMs;
    for (let wait = retry.initialMs; ; wait = Math.min(wait * 2, 5_000)) {
      let res: Response | undefined;
      let failure: unknown;
      try {
        res = await fetch(`${base}${p}`, { method: init.method, headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) });
      } catch (cause) {
        failure = cause;
      }
      const transient = res === undefined || res.status >= 500 || res.status === 429;
      if (!transient || Date.now() + wait > deadline) {
        if (res) return res;
        throw new TransientError(op, `${what} at ${url} failed: ${(failure as Error).message}`, { cause: failure });
      }
      await res?.body?.cancel();
      await new Promise((r) => setTimeout(r, wait));
    }
  };
  // 401/403 are not retriable: waiting does not give an identity rights it lacks.
  const refused = (op: string, what: string, res: Response, body: string): PitwallError =>
    new PitwallError(
      op,
      `${what} refused by the registry at ${url}: HTTP ${res.status} ${body}` +
        (credentials ? ` (signed in as ${credentials.username})` : ' (no credentials: writes need the deploy identity, SCHEMA_REGISTRY_USERNAME)'),
    );
  return {
    async setCompatibility(subject, level) {
      const what = `setting compatibility of ${subject}`;
      const put = () => call('registry.config', what, `/config/${encodeURIComponent(subject)}`, { method: 'PUT', body: { compatibility: level } });
      let res = await put();
      let body = await res.text();
      // Apicurio answers 409 "rule already exists" when two writers create a subject's rule at
      // once (two replicas deploying together); the rule exists now, so the second try updates it.
      if (res.status === 409) {
        res = await put();
        body = await res.text();
      }
      if (res.status === 401 || res.status === 403) throw refused('registry.forbidden', what, res, body);
      if (!res.ok) throw new TransientError('registry.config', `${what} failed: HTTP ${res.status} ${body}`);
    },
    // Registered with a plain POST: the client library's register() first compares the subject's
    // compatibility setting with its own default and refuses when they differ, which fails against
    // subjects another service registered first.
    async register(subject, schema) {
      const what = `registering ${subject}`;
      const res = await call('registry.register', what, `/subjects/${encodeURIComponent(subject)}/versions`, { method: 'POST', body: { schema: JSON.stringify(schema) } });
      const body = await res.text();
      if (res.status === 401 || res.status === 403) throw refused('registry.forbidden', what, res, body);
      if (res.status === 409 || res.status === 422) {
        throw new PitwallError('registry.incompatible', `${what} refused by the registry: HTTP ${res.status} ${body}`);
      }
      if (!res.ok) throw new TransientError('registry.register', `${what} at ${url} failed: HTTP ${res.status} ${body}`);
      return (JSON.parse(body) as { id: number }).id;
    },
    async lookup(subject, schema) {
      const what = `looking up a schema in ${subject}`;
      const res = await call('registry.lookup', what, `/subjects/${encodeURIComponent(subject)}`, { method: 'POST', body: { schema: JSON.stringify(schema) } });
      const body = await res.text();
      if (res.status === 404) return undefined;
      if (res.status === 401 || res.status === 403) throw refused('registry.forbidden', what, res, body);
      if (!res.ok) throw new TransientError('registry.lookup', `${what} at ${url} failed: HTTP ${res.status} ${body}`);
      return (JSON.parse(body) as { id: number }).id;
    },
    async getSchema(id) {
      const what = `fetching schema ${id}`;
      const res = await call('registry.get', what, `/schemas/ids/${id}`, { method: 'GET' });
      const body = await res.text();
      if (res.status === 401 || res.status === 403) throw refused('registry.forbidden', what, res, body);
      if (!res.ok) throw new TransientError('registry.get', `${what} from ${url} failed: HTTP ${res.status} ${body}`);
      return JSON.parse((JSON.parse(body) as { schema: string }).schema) as avro.Schema;
    },
  };
}

const MAGIC = 0;
/** A Confluent-framed value: magic byte 0, the schema id as 4 bytes big-endian, then the Avro body. */
export const CONFLUENT_HEADER_BYTES = 5;

/** The schema id of a Confluent-framed buffer. */
function framedId(buf: Buffer): number {
  if (buf.length < CONFLUENT_HEADER_BYTES || buf.readUInt8(0) !== MAGIC) {
    throw new InvalidInputError('avro.framing', `not a Confluent-framed Avro message (${buf.length} bytes)`);
  }
  return buf.readUInt32BE(1);
}

/**
 * How a codec finds its schema's id: `register` (a deploy step, tests, an admin) adds it to the
 * subject if missing; `lookup` (every service) only reads, and fails when the deploy step has not
 * registered it: services hold no write identity.
 */
export type CodecMode = 'register' | 'lookup';

export interface CodecOptions {
  compatibility?: Compatibility;
  mode?: CodecMode;
}

/** A codec that writes `schema` (its id found or registered per `opts.mode`, default register) and reads every version. */
export async function createAvroCodec<T>(store: SchemaStore, subject: string, schema: avro.Schema, opts: CodecOptions = {}): Promise<AvroCodec<T>> {
  const type = avro.Type.forSchema(schema, { wrapUnions: false });
  let schemaId: number;
  if (opts.mode === 'lookup') {
    const found = await store.lookup(subject, schema);
    if (found === undefined) {
      const name = (schema as { name?: string }).name ?? 'the schema';
      throw new PitwallError(
        'registry.unregistered',
        `${name} is not registered under ${subject}: the deploy step registers every subject (npm run schemas -- deploy; scripts/infra.sh up does it locally)`,
      );
    }
    schemaId = found;
  } else {
    if (opts.compatibility) await store.setCompatibility(subject, opts.compatibility);
    schemaId = await store.register(subject, schema);
  }
  const readers = new Map<number, Promise<avro.Type | avro.Resolver>>();
  readers.set(schemaId, Promise.resolve(type));
  // Writer schemas by id: the fetch while it runs, then the schema itself (read without a promise).
  const writers = new Map<number, avro.Schema | Promise<avro.Schema>>([[schemaId, schema]]);
  const writerFor = (id: number): avro.Schema | Promise<avro.Schema> => {
    let w = writers.get(id);
    if (w === undefined) {
      const fetching = store.getSchema(id);
      fetching.then(
        (s) => writers.set(id, s),
        () => writers.delete(id),
      );
      writers.set(id, (w = fetching));
    }
    return w;
  };
  let scratch = Buffer.allocUnsafe(4096);
  const readerFor = (id: number): Promise<avro.Type | avro.Resolver> => {
    let r = readers.get(id);
    if (!r) {
      r = Promise.resolve(writerFor(id)).then((writer) => type.createResolver(avro.Type.forSchema(writer, { wrapUnions: false })));
      r.catch(() => readers.delete(id));
      readers.set(id, r);
    }
    return r;
  };
  return {
    schemaId,
    encode(value) {
      // Encoded after the header in a reused buffer, then copied out once (toBuffer and a framed
      // copy allocated twice per record).
      let end = type.encode(value, scratch, 5);
      if (end < 0) {
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
        end = type.encode(value, scratch, 5);
      }
      scratch.writeUInt8(MAGIC, 0);
      scratch.writeUInt32BE(schemaId, 1);
      return Buffer.from(scratch.subarray(0, end));
    },
    writerSchema(buf) {
      return writerFor(framedId(buf));
    },
    async decode(buf) {
      const id = framedId(buf);
      const reader = await readerFor(id);
      const body = buf.subarray(CONFLUENT_HEADER_BYTES);
      return (reader === type ? type.fromBuffer(body) : type.fromBuffer(body, reader)) as T;
    },
  };
}

/**
 * The codec of a topic's values as a service uses it: the repository's schemas/<record>/v<version>.avsc,
 * looked up (never registered) under the topic's subject (TopicNameStrategy, `<topic>-value`).
 */
export async function createTopicCodec<T>(store: SchemaStore, topic: string, record: string, version: number, opts: { schemasDir?: string; mode?: CodecMode } = {}): Promise<AvroCodec<T>> {
  const schema = await loadSchemaFile(opts.schemasDir ?? defaultSchemasDir(), record, version);
  return createAvroCodec<T>(store, `${topic}-value`, schema, { mode: opts.mode ?? 'lookup' });
}
