/**
 * `coapfw keygen --out FILE`: make an Ed25519 signing key for SUIT manifests.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { encodeCoseKey, privateKeyFromSecret, privateKeyToPem, publicKeyToPem } from '../suit/index.js';
import { toHex } from '../suit/values.js';
import { fileError } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import { parse, str } from './args.js';
import { UsageError, type CliCommand } from './common.js';

const HELP = `usage: coapfw keygen --out FILE [--format pem|cose] [--force]

Make an Ed25519 key pair for signing SUIT manifests (COSE alg -19).

Writes the private key to FILE (permissions 0600) and the public key to
FILE.pub. Formats:
  pem   (default) PKCS#8 "PRIVATE KEY" and SPKI "PUBLIC KEY" PEM, the same as
        'openssl genpkey -algorithm ed25519' and 'openssl pkey -pubout' write,
        so OpenSSL and other tools can use the keys.
  cose  COSE_Key in CBOR (RFC 9052 §7): {1: 1 (OKP), -1: 6 (Ed25519),
        -2: x (public key), -4: d (32-byte seed, private file only)}.

Other commands also read a private key as 64 hex digits (the seed) and a
public key as 64 hex digits, and P-256 keys in PEM (PKCS#8, SEC 1, SPKI).

options:
  -o, --out FILE        private key file; the public key goes to FILE.pub
  --format pem|cose     file format (default pem)
  --force               overwrite existing files
  -h, --help            this text
`;

/**
 * Replace `path` with `data` without the secret ever being in a file others
 * may read: write a fresh 0600 file next to it, then rename it over `path`
 * (an existing file, its mode and any hard link to it are left untouched).
 */
async function replaceSecret(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.chmod(0o600); // whatever the umask
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Refuse to start when `out` or `out.pub` is in the way (a directory; an existing file without --force). */
async function checkTargets(out: string, force: boolean): Promise<void> {
  for (const path of [out, `${out}.pub`]) {
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw fileError(e, path);
    });
    if (st === undefined) continue;
    if (st.isDirectory()) throw new CoapfwError('IO_ERROR', `${path}: is a directory; --out names the private key file (the public key goes to FILE.pub)`, { path });
    if (!force) throw new CoapfwError('IO_ERROR', `${path}: already exists (--force replaces it)`, { path });
  }
}

/** `coapfw keygen`. */
export const keygenCommand: CliCommand = async (args, io) => {
  const { values, positionals } = parse(args, {
    out: { type: 'string', short: 'o' },
    format: { type: 'string' },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError('unexpected arguments');
  const out = str(values, 'out');
  if (!out) throw new UsageError('--out FILE is required');
  const format = str(values, 'format') ?? 'pem';
  if (format !== 'pem' && format !== 'cose') throw new UsageError(`--format: expected pem or cose, got '${format}'`);
  const force = values.force === true;
  await checkTargets(out, force);
  const key = privateKeyFromSecret('ed25519', new Uint8Array(randomBytes(32)));
  const priv = format === 'pem' ? privateKeyToPem(key) : encodeCoseKey(key);
  const pub = format === 'pem' ? publicKeyToPem(key.publicKey) : encodeCoseKey(key.publicKey);
  try {
    if (force) await replaceSecret(out, priv);
    else await writeFile(out, priv, { mode: 0o600, flag: 'wx' }); // new file: created 0600, never overwrites
  } catch (e) {
    throw fileError(e, out);
  }
  try {
    await writeFile(`${out}.pub`, pub, { mode: 0o644, flag: force ? 'w' : 'wx' });
  } catch (e) {
    // A private key without its public half would be a trap: take it back.
    if (!force) await unlink(out).catch(() => undefined);
    throw fileError(e, `${out}.pub`);
  }
  io.stdout.write(`wrote ${out} (private, 0600) and ${out}.pub; Ed25519 public key ${toHex(key.publicKey.bytes)}\n`);
  return 0;
};
