/**
 * Where the repository's shared folders (schemas/, models/) are: below the repository root, the
 * nearest folder above a module whose package.json declares workspaces. Found by walking up from
 * the module, so a file can move within its package (src/, dist/src/, bin/) without a path
 * counted in "../" going wrong; in an image the root is /app, whose package.json is the pruned root.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const roots = new Map<string, string>();

export function repoRoot(fromModule: string | URL): string {
  const start = path.dirname(typeof fromModule === 'string' && !fromModule.startsWith('file:') ? fromModule : fileURLToPath(fromModule));
  const cached = roots.get(start);
  if (cached) return cached;
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { workspaces?: unknown };
      if (pkg.workspaces !== undefined) {
        roots.set(start, dir);
        return dir;
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`no repository root (a package.json with workspaces) above ${start}`);
  }
}

/** `name` below the repository root, with a trailing separator (callers append file names). */
export function repoDir(fromModule: string | URL, name: string): string {
  return path.join(repoRoot(fromModule), name) + path.sep;
}
