/**
 * The fleet CA's command line: `npm run pki -- <command>` (see USAGE). The CA folder is --dir, else
 * $PITWALL_PKI_DIR, else $PITWALL_HOME/pki, else .pitwall/pki under the current folder.
 * A revoke takes effect at the broker once it reads crl.pem again: `scripts/infra.sh reload` (a graceful restart).
 */
import path from 'node:path';
import { ensureCa, isIdentityKind, openCa, type IdentityKind } from './pki.js';

const USAGE = `usage: npm run pki -- <command> [--dir <ca folder>]
  init                                create the fleet CA if there is none; sign the CRL again
  issue <kind> <name> [--hosts h,..] [--days N]
                                      kind: car (name = vehicle id) | service (ingest, dispatch, ...)
                                            | gateway (CN pitwall-gateway) | server (--hosts: DNS names, IPs)
                                      writes <dir>/issued/<kind>/<name>.pem and .key
  cars <prefix> <count>               issue car certificates <prefix>-0001 .. (the simulator's ids), skipping existing ones
  revoke <kind> <name>                revoke every certificate of that identity and sign the CRL again
  list                                what was issued and revoked
  infra [--hosts h,..]                what scripts/infra.sh needs: the CA, a server certificate for the
                                      brokers, and ingest's and dispatch's service certificates (only those missing)`;

class UsageError extends Error {}

function parse(argv: readonly string[]): { args: string[]; flags: Map<string, string> } {
  const args: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      flags.set(a.slice(2), v);
    } else args.push(a);
  }
  return { args, flags };
}

const kindArg = (s: string | undefined): IdentityKind => {
  if (s === undefined || !isIdentityKind(s)) throw new UsageError(`kind must be car, service, gateway or server, got ${s ?? 'nothing'}`);
  return s;
};

async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { args, flags } = parse(argv);
  const dir = path.resolve(flags.get('dir') ?? env.PITWALL_PKI_DIR ?? path.join(env.PITWALL_HOME ?? '.pitwall', 'pki'));
  const hosts = flags
    .get('hosts')
    ?.split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const days = flags.has('days') ? Number(flags.get('days')) : undefined;
  const [cmd, ...rest] = args;
  const exists = async (f: string): Promise<boolean> => (await import('node:fs')).existsSync(f);
  switch (cmd) {
    case 'init': {
      await ensureCa(dir);
      console.log(`fleet CA: ${dir}/ca.pem (CRL: ${dir}/crl.pem)`);
      return;
    }
    case 'issue': {
      const ca = await openCa(dir).catch(() => ensureCa(dir));
      const id = await ca.issue({ kind: kindArg(rest[0]), name: rest[1] ?? '', ...(hosts ? { hosts } : {}), ...(days !== undefined ? { days } : {}) });
      console.log(`${id.kind} ${id.name}: CN=${id.cn} serial ${id.serial} until ${id.notAfter}\n  cert ${id.certFile}\n  key  ${id.keyFile}`);
      return;
    }
    case 'cars': {
      const prefix = rest[0];
      const count = Number(rest[1]);
      if (!prefix || !Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError('cars needs <prefix> <count 1-100000>');
      const ca = await openCa(dir).catch(() => ensureCa(dir));
      let made = 0;
      for (let i = 1; i <= count; i++) {
        const name = `${prefix}-${String(i).padStart(4, '0')}`;
        if (await exists(ca.files('car', name).certFile)) continue;
        await ca.issue({ kind: 'car', name, ...(days !== undefined ? { days } : {}) });
        made++;
      }
      console.log(`${count} car certificates in ${dir}/issued/car (${made} new)`);
      return;
    }
    case 'revoke': {
      const ca = await openCa(dir);
      const n = await ca.revoke(kindArg(rest[0]), rest[1] ?? '');
      console.log(`revoked ${n} certificate(s) of ${rest[0]} ${rest[1]}; the broker refuses them after it reloads ${dir}/crl.pem`);
      if (n === 0) process.exitCode = 1;
      return;
    }
    case 'list': {
      const ca = await openCa(dir);
      for (const e of ca.list()) console.log(`${e.kind.padEnd(8)} ${e.name.padEnd(24)} ${e.cn.padEnd(24)} ${e.serial} until ${e.notAfter}${e.revokedAt ? ` REVOKED ${e.revokedAt}` : ''}`);
      return;
    }
    case 'infra': {
      const ca = await ensureCa(dir);
      const want: Array<[IdentityKind, string]> = [
        ['server', 'broker'],
        ['service', 'ingest'],
        ['service', 'dispatch'],
      ];
      for (const [kind, name] of want) {
        if (await exists(ca.files(kind, name).certFile)) continue;
        await ca.issue({ kind, name, ...(kind === 'server' && hosts ? { hosts } : {}) });
      }
      return;
    }
    default:
      throw new UsageError(cmd === undefined ? 'no command' : `unknown command ${cmd}`);
  }
}

main(process.argv.slice(2), process.env).catch((err: Error) => {
  console.error(err instanceof UsageError ? `${err.message}\n${USAGE}` : `error: ${err.message}`);
  process.exit(2);
});
