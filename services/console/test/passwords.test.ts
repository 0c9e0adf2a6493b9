import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@pitwall/common';
import { can, DEFAULT_SCRYPT, hashPassword, makeUserEntry, parseHash, parseUsers, scrypt, verifyPassword } from '../src/passwords.js';

/** The cheapest parameters an entry may have: keeps the tests quick. */
const FAST = { N: 2 ** 14, r: 8, p: 1 };

test('a hash is self-describing scrypt$N$r$p$salt$hash, salted afresh each time', async () => {
  const a = await hashPassword('correct horse', FAST);
  const b = await hashPassword('correct horse', FAST);
  assert.match(a, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  assert.notEqual(a, b, 'random salt');
  const parsed = parseHash(a);
  assert.ok(typeof parsed !== 'string');
  assert.deepEqual([parsed.N, parsed.r, parsed.p, parsed.salt.length, parsed.key.length], [16384, 8, 1, 16, 32]);
  assert.match(await hashPassword('x'), new RegExp(`^scrypt\\$${DEFAULT_SCRYPT.N}\\$${DEFAULT_SCRYPT.r}\\$${DEFAULT_SCRYPT.p}\\$`));
});

test('verifyPassword: the right password of a known user only; unknown users cost a scrypt run too', async () => {
  const users = parseUsers([await makeUserEntry('alice', 'operator', 'wonder:land, too', FAST), await makeUserEntry('bob', 'viewer', 'builder-pw', FAST)].join(','));
  assert.equal((await verifyPassword(users, 'alice', 'wonder:land, too'))?.role, 'operator');
  assert.equal((await verifyPassword(users, 'bob', 'builder-pw'))?.role, 'viewer');
  for (const [name, pw] of [
    ['alice', 'wonder:land, to'],
    ['alice', 'WONDER:LAND, TOO'],
    ['alice', ''],
    ['alice', 'builder-pw'],
    ['bob', 'wonder:land, too'],
    ['carol', 'builder-pw'],
    ['', ''],
  ] as const) {
    assert.equal(await verifyPassword(users, name, pw), null, `${name}/${pw}`);
  }
  // An unknown user is not answered faster than a wrong password: it runs one scrypt derivation
  // of the same cost (N, r, p, key length) against a dummy hash. Counted, not timed.
  const runs: string[] = [];
  const counting: typeof scrypt = (pw, salt, keylen, params) => {
    runs.push(`${params.N}/${params.r}/${params.p}/${keylen}`);
    return scrypt(pw, salt, keylen, params);
  };
  assert.equal(await verifyPassword(users, 'alice', 'nope', counting), null);
  assert.equal(await verifyPassword(users, 'nobody', 'nope', counting), null);
  assert.equal(await verifyPassword(users, 'nobody', 'x'.repeat(10_000), counting), null);
  assert.equal(runs.length, 3);
  assert.equal(new Set(runs).size, 1, `derivations: ${runs.join(', ')}`);
});

test('CONSOLE_USERS entries: name:role:hash, parsed by name', async () => {
  const hash = await hashPassword('pw-1234567890', FAST);
  const users = parseUsers(` ops.jane@example:operator:${hash} , sam:admin:${hash},vic:viewer:${hash}, `);
  assert.deepEqual(
    [...users.values()].map((u) => [u.name, u.role]),
    [
      ['ops.jane@example', 'operator'],
      ['sam', 'admin'],
      ['vic', 'viewer'],
    ],
  );
  assert.equal(can('viewer', 'act'), false);
  assert.equal(can('operator', 'act'), true);
  assert.equal(can('operator', 'revokeOthers'), false);
  assert.equal(can('admin', 'act'), true);
  assert.equal(can('admin', 'revokeOthers'), true);
});

test('a plain-text or malformed entry is refused, naming CONSOLE_USERS and how to make a hash, never echoing the secret', async () => {
  const hash = await hashPassword('pw-1234567890', FAST);
  const weak = hash.replace('scrypt$16384$', 'scrypt$1024$');
  const cases: [string, RegExp][] = [
    ['alice:s3cretpassword', /entry 1 \("alice"\) is not name:role:hash/],
    ['alice:operator:s3cretpassword', /"alice"\): the third field is not a password hash/],
    ['alice:s3cret:password', /is not a password hash/],
    [`alice:operator:${hash},bob:s3cretpassword`, /entry 2 \("bob"\) is not name:role:hash/],
    [`alice:root:${hash}`, /role is not one of viewer, operator, admin/],
    [`al ice:operator:${hash}`, /user name may only contain/],
    [`alice:operator:${hash},alice:viewer:${hash}`, /listed twice/],
    [`alice:operator:${weak}`, /N=1024/],
    [`alice:operator:${hash.replace(/\$[\w-]+$/, '$abc')}`, /not 32 to 64 bytes/],
    [',', /lists no user/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseUsers(value),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.variable === 'CONSOLE_USERS' &&
        message.test(err.message) &&
        /npm run console-user -- <name> <role>/.test(err.message) &&
        !/s3cret|password\b(?! hash)/.test(err.message.replace(/password hashes, never passwords|reads the password from stdin/g, '')),
      value,
    );
  }
});

test('npm run console-user: reads the password from stdin, prints an entry that verifies', async () => {
  const cli = fileURLToPath(new URL('../src/user-cli.js', import.meta.url));
  const run = (args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(process.execPath, [cli, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
      child.stdin!.end(input);
    });
  const ok = await run(['jane.ops', 'operator', '--password-stdin'], 'a long enough passphrase\n');
  assert.equal(ok.code, 0, ok.stderr);
  const entry = ok.stdout.trim();
  assert.match(entry, /^jane\.ops:operator:scrypt\$/);
  assert.ok(!entry.includes('passphrase'));
  const users = parseUsers(entry);
  assert.equal((await verifyPassword(users, 'jane.ops', 'a long enough passphrase'))?.role, 'operator');
  assert.equal(await verifyPassword(users, 'jane.ops', 'a long enough passphrase\n'), null, 'the newline is not part of it');

  const short = await run(['jane', 'viewer'], 'pitwall\n');
  assert.equal(short.code, 2);
  assert.match(short.stderr, /shorter than 12/);
  assert.equal((await run(['jane', 'viewer', '--allow-short'], 'pitwall\n')).code, 0);
  assert.match((await run(['jane', 'superuser'], 'x'.repeat(20))).stderr, /role "superuser" is not one of/);
  assert.match((await run(['jane'], 'x'.repeat(20))).stderr, /usage: npm run console-user/);
  assert.match((await run(['jane', 'admin'], 'a\nb\n')).stderr, /one line/);
});
