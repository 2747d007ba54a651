/**
 * The fleet test's server and publisher: real `coapfw serve` and
 * `coapfw publish` processes (dist/, built by `npm test`), started with
 * process.execPath directly so that a SIGKILL reaches the server itself
 * (DESIGN.md: killing a wrapper leaves node running).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type CliProcess } from '../cli/spawn-cli.js';

/** Where the fleet's server listens and what it needs on disk. */
export interface ServeSetup {
  readonly dir: string;
  readonly db: string;
  readonly port: number;
  readonly dtlsPort: number;
  readonly pollS: number;
  /** The publisher's PSK (identity, hex key), written into the PSK file with the publisher role. */
  readonly publisher: { readonly identity: string; readonly keyHex: string };
}

/** Make the served directory and the PSK file; keys come from `coapfw keygen`. */
export async function prepareServe(dir: string, db: string, port: number, dtlsPort: number, pollS: number): Promise<ServeSetup> {
  await mkdir(join(dir, 'files'), { recursive: true });
  const publisher = { identity: 'release-bot', keyHex: randomBytes(16).toString('hex') };
  await writeFile(join(dir, 'psk.txt'), `# identity key roles\n${publisher.identity} ${publisher.keyHex} publisher\n`);
  const keygen = await runCli(['keygen', '--out', join(dir, 'oem.key')]).done;
  if (keygen.code !== 0) throw new Error(`keygen failed: ${keygen.err}`);
  return { dir, db, port, dtlsPort, pollS, publisher };
}

/** Start `coapfw serve` and wait for its startup line. */
export async function startServe(s: ServeSetup): Promise<CliProcess> {
  const p = runCli([
    'serve', join(s.dir, 'files'),
    '--db', s.db,
    '--trust', join(s.dir, 'oem.key.pub'),
    '--psk-file', join(s.dir, 'psk.txt'),
    '--open-registration',
    '--poll', String(s.pollS),
    '--host', '127.0.0.1',
    '--port', String(s.port),
    '--dtls-port', String(s.dtlsPort),
  ]);
  await p.waitFor((out, err) => /serving/.test(out + err), 30_000);
  return p;
}

/**
 * Start `coapfw serve` on ports `pick` chooses (a probed free port), choosing
 * again when another test took one between the probe and the bind
 * (ADDRESS_IN_USE); at most 3 tries. Returns the setup with the ports used.
 */
export async function startServeOnFreePorts(s: ServeSetup, pick: () => Promise<number>): Promise<{ setup: ServeSetup; serve: CliProcess }> {
  for (let attempt = 1; ; attempt++) {
    const setup = { ...s, port: await pick(), dtlsPort: await pick() };
    try {
      return { setup, serve: await startServe(setup) };
    } catch (e) {
      if (attempt === 3 || !/ADDRESS_IN_USE/.test(String(e))) throw e;
    }
  }
}

/** `coapfw publish IMAGE` over coaps as the publisher; resolves with the process's result. */
export function publish(s: ServeSetup, image: string, args: readonly string[]): CliProcess['done'] {
  return runCli([
    'publish', image,
    '--key', join(s.dir, 'oem.key'),
    '--server', `coaps://127.0.0.1:${s.dtlsPort}`,
    '--psk-identity', s.publisher.identity,
    '--psk-key', `hex:${s.publisher.keyHex}`,
    ...args,
  ]).done;
}
