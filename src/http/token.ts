/**
 * The operator token: what the fleet page and scripts send
 * (`Authorization: Bearer <token>`) to pause, resume, abort or start a
 * rollout. Generated on first start (32 random bytes, base64url), stored in
 * the state directory as `http-token` with mode 0600, and compared in
 * constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CoapfwError } from '../errors.js';

/** The token and where it lives; `created` on the first start (print it then). */
export interface OperatorToken {
  readonly token: string;
  readonly path: string;
  readonly created: boolean;
}

/** The token file's name in the state directory. */
export const TOKEN_FILE = 'http-token';
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

/** Read the token from `dir`, or create it (and the directory, 0700) when there is none. */
export async function loadOrCreateToken(dir: string): Promise<OperatorToken> {
  const path = join(dir, TOKEN_FILE);
  const existing = await readToken(path);
  if (existing !== undefined) return { token: existing, path, created: false };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  // Written whole into a file of our own, then linked into place: link(2) fails with EEXIST when another
  // server starting at once got there first, and nobody ever reads a token file half-written.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(`${token}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await chmod(tmp, 0o600);
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { token: (await readToken(path))!, path, created: false };
    throw new CoapfwError('IO_ERROR', `${path}: cannot create the operator token: ${(e as Error).message}`, { cause: e, path });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return { token, path, created: true };
}

async function readToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > 4096) throw new CoapfwError('CONFIG_INVALID', `${path}: not an operator token (${st.size} bytes)`, { path });
    // A token others can read is a token others can use.
    if ((st.mode & 0o077) !== 0) throw new CoapfwError('CONFIG_INVALID', `${path}: readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { path });
    text = (await readFile(path, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof CoapfwError) throw e;
    throw new CoapfwError('IO_ERROR', `${path}: cannot read the operator token: ${(e as Error).message}`, { cause: e, path });
  }
  if (!TOKEN.test(text)) throw new CoapfwError('CONFIG_INVALID', `${path}: expected 16..256 characters of A-Z a-z 0-9 - _`, { path });
  return text;
}

/** Constant-time check of an `Authorization` header against the token. */
export function authorized(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (m === null) return false;
  // Hash both so that the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(m[1]!).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
