/**
 * CONSOLE_USERS for tests: the console only takes password hashes, so tests hash their
 * passwords here (with the cheapest parameters an entry may have, to keep starts quick).
 */
import { makeUserEntry, type Role } from '@pitwall/console';

export interface TestUser {
  name: string;
  role: Role;
  password: string;
}

export async function consoleUsers(users: readonly TestUser[]): Promise<string> {
  const entries = await Promise.all(users.map((u) => makeUserEntry(u.name, u.role, u.password, { N: 2 ** 14, r: 8, p: 1 })));
  return entries.join(',');
}
