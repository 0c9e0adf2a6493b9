/**
 * Operator accounts: password hashes and roles. CONSOLE_USERS never holds a password, only
 * entries `name:role:scrypt$N$r$p$salt$hash` (salt and hash in base64url), separated by commas;
 * `npm run console-user -- <name> <role>` makes one. A hash field that is not exactly this shape
 * is refused, so a plain password left in the variable stops the console at start.
 *
 * Verification derives the key with the entry's own parameters and compares it with
 * timingSafeEqual; an unknown user costs the same scrypt run (against a dummy hash with the
 * parameters of the configured users), so the answer time says nothing about which names exist.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ConfigError } from '@pitwall/common';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do. viewer: read only; operator: acknowledge, resolve; admin: also revoke others' sessions. */
export const PERMISSIONS = Object.freeze({
  /** Acknowledge and resolve incidents. */
  act: ['operator', 'admin'] as readonly Role[],
  /** Revoke every session of another user. */
  revokeOthers: ['admin'] as readonly Role[],
});
export type Permission = keyof typeof PERMISSIONS;

export const can = (role: Role, permission: Permission): boolean => PERMISSIONS[permission].includes(role);

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 32 MiB and about 50-100 ms per check on one core. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Bounds accepted in an entry: weaker is refused; stronger than this could exhaust memory. */
const MIN_N = 2 ** 14;
const MAX_N = 2 ** 20;
const MAX_PASSWORD_BYTES = 1024;

export interface PasswordHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

export interface UserEntry {
  name: string;
  role: Role;
  hash: PasswordHash;
}

export type Users = ReadonlyMap<string, UserEntry>;

const NAME = /^[\w.@-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const HASH_SHAPE = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

export const HOW_TO_MAKE_AN_ENTRY = 'make each entry with `npm run console-user -- <name> <role>` (reads the password from stdin, prints name:role:scrypt$...); roles: viewer, operator, admin';

export function scrypt(password: string | Buffer, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCallback(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export function isValidUserName(name: string): boolean {
  return NAME.test(name);
}

export function isRole(role: string): role is Role {
  return (ROLES as readonly string[]).includes(role);
}

/** `scrypt$N$r$p$salt$hash` of a password, with a fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (password.length === 0) throw new RangeError('the password is empty');
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new RangeError(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, params);
  return formatHash({ ...params, salt, key });
}

export function formatHash(h: PasswordHash): string {
  return `scrypt$${h.N}$${h.r}$${h.p}$${h.salt.toString('base64url')}$${h.key.toString('base64url')}`;
}

/** A CONSOLE_USERS entry. */
export async function makeUserEntry(name: string, role: Role, password: string, params?: ScryptParams): Promise<string> {
  if (!isValidUserName(name)) throw new RangeError(`user name "${name}" may only contain letters, digits, . _ @ - (at most 64)`);
  if (!isRole(role)) throw new RangeError(`role "${String(role)}" is not one of ${ROLES.join(', ')}`);
  return `${name}:${role}:${await hashPassword(password, params)}`;
}

/** Parses `scrypt$N$r$p$salt$hash`; the reason it is not one otherwise (never echoing the text). */
export function parseHash(text: string): PasswordHash | string {
  const m = HASH_SHAPE.exec(text);
  if (!m) return 'is not a password hash (scrypt$N$r$p$salt$hash)';
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!Number.isInteger(Math.log2(N)) || N < MIN_N || N > MAX_N) return `has scrypt N=${N}; expected a power of two from ${MIN_N} to ${MAX_N}`;
  if (r < 1 || r > 32) return `has scrypt r=${r}; expected 1 to 32`;
  if (p < 1 || p > 16) return `has scrypt p=${p}; expected 1 to 16`;
  if (!B64URL.test(m[4]!) || !B64URL.test(m[5]!)) return 'is not a password hash (base64url salt and hash expected)';
  const salt = Buffer.from(m[4]!, 'base64url');
  const key = Buffer.from(m[5]!, 'base64url');
  if (salt.length < 16) return 'has a salt shorter than 16 bytes';
  if (key.length < 32 || key.length > 64) return 'has a hash that is not 32 to 64 bytes long';
  return { N, r, p, salt, key };
}

/**
 * CONSOLE_USERS -> name -> entry. Throws a ConfigError naming CONSOLE_USERS that says how to make
 * an entry; it quotes a user name at most, never anything that could be a password.
 */
export function parseUsers(text: string): Users {
  const users = new Map<string, UserEntry>();
  const fail = (message: string): never => {
    throw new ConfigError('CONSOLE_USERS', `${message}; CONSOLE_USERS holds password hashes, never passwords: ${HOW_TO_MAKE_AN_ENTRY}`);
  };
  let index = 0;
  for (const raw of text.split(',')) {
    const item = raw.trim();
    index++;
    if (item === '') continue;
    const fields = item.split(':');
    const name = fields[0]!.trim();
    const label = isValidUserName(name) ? `entry ${index} ("${name}")` : `entry ${index}`;
    if (fields.length !== 3) fail(`${label} is not name:role:hash`);
    const role = fields[1]!.trim();
    const hash = parseHash(fields[2]!.trim());
    if (typeof hash === 'string') fail(`${label}: the third field ${hash}`);
    if (!isValidUserName(name)) fail(`${label}: the user name may only contain letters, digits, . _ @ - (at most 64)`);
    if (!isRole(role)) fail(`${label}: the role is not one of ${ROLES.join(', ')}`);
    if (users.has(name)) fail(`user "${name}" is listed twice`);
    users.set(name, { name, role: role as Role, hash: hash as PasswordHash });
  }
  if (users.size === 0) fail('lists no user');
  return users;
}

const dummies = new WeakMap<Users, PasswordHash>();

/** A hash no password matches, with the parameters of the directory's first user. */
function dummyFor(users: Users): PasswordHash {
  let d = dummies.get(users);
  if (!d) {
    const first = users.values().next().value;
    const params = first?.hash ?? DEFAULT_SCRYPT;
    d = { N: params.N, r: params.r, p: params.p, salt: randomBytes(SALT_BYTES), key: randomBytes(first?.hash.key.length ?? KEY_BYTES) };
    dummies.set(users, d);
  }
  return d;
}

/**
 * The user's entry when name and password match, else null. Always runs one scrypt derivation
 * (an unknown name runs it against a dummy hash) and compares in constant time.
 */
export async function verifyPassword(users: Users, name: string, password: string, derive: typeof scrypt = scrypt): Promise<UserEntry | null> {
  const entry = users.get(name);
  const h = entry?.hash ?? dummyFor(users);
  // Over-long input is hashed too (cut), so its refusal costs the same.
  const given = Buffer.from(password, 'utf8').subarray(0, MAX_PASSWORD_BYTES);
  const derived = await derive(given, h.salt, h.key.length, h);
  const same = timingSafeEqual(derived, h.key);
  return same && entry !== undefined && password.length > 0 && Buffer.byteLength(password) <= MAX_PASSWORD_BYTES ? entry : null;
}
