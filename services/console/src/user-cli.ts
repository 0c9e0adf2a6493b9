/**
 * Makes one CONSOLE_USERS entry: `npm run console-user -- <name> <role>`.
 *
 * The password is read from stdin: from a terminal it is asked for twice without echo; otherwise
 * (a pipe, `--password-stdin`) the first line is taken, e.g.
 *   printf '%s\n' "$PASSWORD" | npm run -s console-user -- jane operator --password-stdin
 * Prints `name:role:scrypt$N$r$p$salt$hash` on stdout; join entries with commas. Passwords
 * shorter than 12 characters are refused unless --allow-short (the demo's own account uses it).
 */
import { makeUserEntry, ROLES, isRole, isValidUserName } from './passwords.js';

const USAGE = `usage: npm run console-user -- <name> <role> [--password-stdin] [--allow-short]
  role: ${ROLES.join(' | ')}  (viewer: read only; operator: acknowledge and resolve; admin: also revoke others' sessions)
  Reads the password from stdin and prints the CONSOLE_USERS entry name:role:scrypt$...`;
const MIN_LENGTH = 12;

class UsageError extends Error {}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** One line from the terminal without echoing it. */
function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readPassword(fromPipe: boolean): Promise<string> {
  if (!fromPipe && process.stdin.isTTY) {
    const first = await askHidden('Password: ');
    const again = await askHidden('Again: ');
    if (first !== again) throw new UsageError('the two passwords differ');
    return first;
  }
  const text = await readAll(process.stdin);
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length > 1) throw new UsageError('expected the password on one line of stdin');
  return lines[0] ?? '';
}

async function main(argv: string[]): Promise<void> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const args = argv.filter((a) => !a.startsWith('--'));
  if (flags.has('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  for (const f of flags) if (f !== '--password-stdin' && f !== '--allow-short') throw new UsageError(`unknown option ${f}`);
  const [name, role] = args;
  if (args.length !== 2 || !name || !role) throw new UsageError('give a user name and a role');
  if (!isValidUserName(name)) throw new UsageError(`user name "${name}" may only contain letters, digits, . _ @ - (at most 64)`);
  if (!isRole(role)) throw new UsageError(`role "${role}" is not one of ${ROLES.join(', ')}`);
  const password = await readPassword(flags.has('--password-stdin'));
  if (password === '') throw new UsageError('the password is empty');
  if (password.length < MIN_LENGTH && !flags.has('--allow-short')) throw new UsageError(`the password is shorter than ${MIN_LENGTH} characters (--allow-short to accept it anyway)`);
  process.stdout.write(`${await makeUserEntry(name, role, password)}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`console-user: ${(err as Error).message}\n${err instanceof UsageError ? `${USAGE}\n` : ''}`);
  process.exitCode = 2;
});
