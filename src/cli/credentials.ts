/**
 * coaps credentials for `get` and `device`, from the command line or from a
 * credentials file, through one helper: `--psk-identity ID --psk-key KEY`
 * puts the key in the process list (`ps`) for every user of the machine to
 * read; `--credentials FILE` keeps it in a file only its owner can read.
 *
 * The file has one `identity key` line per server identity (blank lines and
 * `#` comments ignored); the key is written as for --psk-key (`0x<hex>`,
 * `hex:<hex>`, or text). With several lines, `--psk-identity` picks one. The
 * file must not be readable by group or others (mode 0600), as ssh insists
 * for its keys.
 *
 *   # coaps credentials of this board
 *   dev-0001 0x00112233445566778899aabbccddeeff
 */
import { stat } from 'node:fs/promises';
import { readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import type { PskCredentials } from '../client/secure.js';
import { parsePskKey } from '../transport/dtls/psk-store.js';
import { optionValue, str, type Values } from './args.js';
import { UsageError } from './common.js';

/** Largest credentials file read. */
const MAX_BYTES = 64 * 1024;

/** The `identity key` entries of a credentials file, after checking that only its owner can read it. */
export async function readCredentials(path: string): Promise<Map<string, Uint8Array>> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (e) {
    throw new CoapfwError('IO_ERROR', `${path}: cannot read the credentials file: ${(e as Error).message}`, { cause: e, path });
  }
  if ((mode & 0o077) !== 0) {
    throw new CoapfwError('CONFIG_INVALID', `${path}: credentials readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 ${path}`, { path });
  }
  const text = new TextDecoder().decode(await readFileBounded(path, MAX_BYTES, 'credentials file'));
  const out = new Map<string, Uint8Array>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${path}:${i + 1}`;
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (m === null) throw new CoapfwError('CONFIG_INVALID', `${where}: expected "identity key"`, { path });
    if (out.has(m[1]!)) throw new CoapfwError('CONFIG_INVALID', `${where}: identity "${m[1]}" appears twice`, { path });
    try {
      out.set(m[1]!, parsePskKey(m[2]!, where));
    } catch (e) {
      throw new CoapfwError('CONFIG_INVALID', (e as Error).message, { cause: e, path });
    }
  }
  if (out.size === 0) throw new CoapfwError('CONFIG_INVALID', `${path}: no "identity key" line`, { path });
  return out;
}

/**
 * The coaps credentials a command was given: `--credentials FILE`
 * (optionally with `--psk-identity` to pick an entry), or
 * `--psk-identity ID --psk-key KEY`. Required for coaps://, refused for
 * coap:// (they would be silently unused); every mistake is a usage error.
 * `prefix` names another set of the same options (`upstream-` for the
 * gateway's own: `--upstream-credentials`, `--upstream-psk-identity`, ...).
 */
export async function pskCredentials(scheme: string, values: Values, prefix = ''): Promise<PskCredentials | undefined> {
  const [idOpt, keyOpt, fileOpt] = ['psk-identity', 'psk-key', 'credentials'].map((n) => `--${prefix}${n}`) as [string, string, string];
  const identity = str(values, idOpt.slice(2));
  const key = str(values, keyOpt.slice(2));
  const file = str(values, fileOpt.slice(2));
  if (scheme !== 'coaps') {
    if (identity !== undefined || key !== undefined || file !== undefined) throw new UsageError(`${fileOpt}, ${idOpt} and ${keyOpt} are for coaps:// URIs`);
    return undefined;
  }
  if (file !== undefined) {
    if (key !== undefined) throw new UsageError(`${keyOpt} and ${fileOpt}: give the key one way`);
    const entries = await readCredentials(file);
    if (identity !== undefined) {
      const k = entries.get(identity);
      if (k === undefined) throw new UsageError(`${idOpt} ${identity}: not in ${file}`);
      return { identity, key: k };
    }
    if (entries.size > 1) throw new UsageError(`${file} holds ${entries.size} identities: pick one with ${idOpt}`);
    const [only] = entries;
    return { identity: only![0], key: only![1] };
  }
  if (identity === undefined || identity === '' || key === undefined) throw new UsageError(`coaps:// needs ${fileOpt} FILE, or ${idOpt} ID and ${keyOpt} KEY`);
  return { identity, key: optionValue(() => parsePskKey(key, keyOpt)) };
}
