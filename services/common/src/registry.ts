/**
 * Avro in the Confluent wire format, through a Confluent-compatible schema registry (Apicurio's
 * /apis/ccompat/v7 here). Wire format: byte 0 = magic 0, bytes 1-4 = schema id (big-endian), then the
 * Avro binary body. Schemas live as versioned files in schemas/<record>/vN.avsc; the service
 * registers the version it writes under the subject `<topic>-value` (TopicNameStrategy) and decodes
 * any registered writer version into the reader schema it was built with.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { InvalidInputError, PitwallError, TransientError } from './errors.js';

/** The repository's schemas/ folder, relative to this module (dist/src/ -> ../../../../schemas). */
export function defaultSchemasDir(): string {
  return fileURLToPath(new URL('../../../../schemas/', import.meta.url));
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
}

/** The narrow view of a registry that codecs need; one contract, any Confluent-compatible registry. */
export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'NONE';

export interface SchemaStore {
  register(subject: string, schema: avro.Schema): Promise<number>;
  /** Sets the subject's compatibility rule; later registrations that break it are refused. */
  setCompatibility(subject: string, level: Compatibility): Promise<void>;
  getSchema(id: number): Promise<avro.Schema>;
}

export function createSchemaStore(url: string): SchemaStore {
  const client = new SchemaRegistry({ host: url.replace(/\/$/, '') });
  const base = url.replace(/\/$/, '');
  return {
    async setCompatibility(subject, level) {
      let res: Response;
      try {
        res = await fetch(`${base}/config/${encodeURIComponent(subject)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ compatibility: level }),
        });
      } catch (cause) {
        throw new TransientError('registry.config', `setting compatibility of ${subject} at ${url} failed: ${(cause as Error).message}`, { cause });
      }
      if (!res.ok) throw new TransientError('registry.config', `setting compatibility of ${subject} failed: HTTP ${res.status} ${await res.text()}`);
    },
    // Registered with a plain POST: the client library's register() first compares the subject's
    // compatibility setting with its own default and refuses when they differ, which fails against
    // subjects another service registered first.
    async register(subject, schema) {
      let res: Response;
      try {
        res = await fetch(`${base}/subjects/${encodeURIComponent(subject)}/versions`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ schema: JSON.stringify(schema) }),
        });
      } catch (cause) {
        throw new TransientError('registry.register', `registering ${subject} at ${url} failed: ${(cause as Error).message}`, { cause });
      }
      const body = await res.text();
      if (res.status === 409 || res.status === 422) {
        throw new PitwallError('registry.incompatible', `registering ${subject} refused by the registry: HTTP ${res.status} ${body}`);
      }
      if (!res.ok) throw new TransientError('registry.register', `registering ${subject} at ${url} failed: HTTP ${res.status} ${body}`);
      return (JSON.parse(body) as { id: number }).id;
    },
    async getSchema(id) {
      try {
        const schema = await client.getSchema(id);
        // The client returns an avsc Type for Avro; its schema() gives back the JSON form.
        return (schema as unknown as { schema(): avro.Schema }).schema();
      } catch (cause) {
        throw new TransientError('registry.get', `fetching schema ${id} from ${url} failed: ${(cause as Error).message}`, { cause });
      }
    },
  };
}

const MAGIC = 0;

/** Registers `schema` under `subject` and returns a codec that writes it and reads every version. */
export async function createAvroCodec<T>(
  store: SchemaStore,
  subject: string,
  schema: avro.Schema,
  opts: { compatibility?: Compatibility } = {},
): Promise<AvroCodec<T>> {
  const type = avro.Type.forSchema(schema, { wrapUnions: false } as avro.ForSchemaOptions);
  if (opts.compatibility) await store.setCompatibility(subject, opts.compatibility);
  const schemaId = await store.register(subject, schema);
  const readers = new Map<number, Promise<avro.Type | avro.Resolver>>();
  readers.set(schemaId, Promise.resolve(type));
  const readerFor = (id: number): Promise<avro.Type | avro.Resolver> => {
    let r = readers.get(id);
    if (!r) {
      r = store.getSchema(id).then((writer) => type.createResolver(avro.Type.forSchema(writer, { wrapUnions: false } as avro.ForSchemaOptions)));
      r.catch(() => readers.delete(id));
      readers.set(id, r);
    }
    return r;
  };
  return {
    schemaId,
    encode(value) {
      const body = type.toBuffer(value);
      const out = Buffer.allocUnsafe(5 + body.length);
      out.writeUInt8(MAGIC, 0);
      out.writeUInt32BE(schemaId, 1);
      body.copy(out, 5);
      return out;
    },
    async decode(buf) {
      if (buf.length < 5 || buf.readUInt8(0) !== MAGIC) {
        throw new InvalidInputError('avro.framing', `not a Confluent-framed Avro message (${buf.length} bytes)`);
      }
      const id = buf.readUInt32BE(1);
      const reader = await readerFor(id);
      const body = buf.subarray(5);
      return (reader === type ? type.fromBuffer(body) : type.fromBuffer(body, reader as avro.Resolver)) as T;
    },
  };
}

/**
 * The codec of a topic's values: the repository's schemas/<record>/v<version>.avsc registered
 * under the topic's subject (TopicNameStrategy, `<topic>-value`).
 */
export async function createTopicCodec<T>(
  store: SchemaStore,
  topic: string,
  record: string,
  version: number,
  opts: { compatibility?: Compatibility; schemasDir?: string } = {},
): Promise<AvroCodec<T>> {
  const schema = await loadSchemaFile(opts.schemasDir ?? defaultSchemasDir(), record, version);
  return createAvroCodec<T>(store, `${topic}-value`, schema, opts.compatibility ? { compatibility: opts.compatibility } : {});
}
