/**
 * An exclusive, process-wide lock on a file (the flash chip of a FileFlash),
 * so that two device processes never write one chip: the second gets
 * `FLASH_BUSY`, naming the process that holds it.
 *
 * Node has no flock(2), so the lock is a lock file next to the target,
 * `<realpath>.lock`, holding its owner as JSON: pid, process start time
 * (Linux: boot id and `/proc/<pid>/stat` start time), host, command line, a
 * random nonce. Why not a library: proper-lockfile (mkdir + mtime refresh)
 * keeps a SIGKILLed owner's lock for its whole stale period (10 s), cannot
 * name the owner, and declares a lock "compromised" (and throws) when the
 * event loop stalls past that period; the native flock addons need a compiler
 * on every install. What a lock here must survive:
 *
 * - SIGKILL of the owner: a lock whose pid is gone, or whose pid now runs a
 *   process with another start time (pid reuse), is stale and taken over at
 *   once; a lock from another host cannot be judged and counts as held.
 * - Two processes racing: the lock file appears complete and atomically
 *   (written under a temporary name, then `link(2)`ed into place, which fails
 *   if it exists). Taking over a stale lock is the dangerous part: "read,
 *   judge stale, unlink" lets a slow process unlink the fresh lock of a
 *   faster one. So a stale lock with nonce n is only removed by the process
 *   that creates the breaker file `<lock>.break-<n>` (exclusively), which
 *   re-reads the lock and unlinks it only if it still holds nonce n; nonces
 *   never repeat, so a slow process that creates the breaker after the first
 *   one finished finds another nonce and leaves the lock alone. A breaker
 *   left by a killed process is itself broken the same way (bounded depth).
 *
 * Released on `release()` and, for locks still held, on process exit.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, open, readdir, readFile, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CoapfwError } from '../errors.js';

/** Who holds a lock (the lock file's content). */
export interface LockOwner {
  readonly pid: number;
  /** Process start time, `<boot id>:<start ticks>` (Linux); absent where it cannot be read. */
  readonly start?: string;
  readonly host: string;
  readonly command: string;
  /** ISO time the lock was taken. */
  readonly since: string;
  readonly nonce: string;
}

/** How many stale breaker files deep a takeover goes before it gives up. */
const MAX_BREAK_DEPTH = 3;
/** Attempts of the take / judge / break loop (each waits a little when another process is mid-takeover). */
const MAX_ATTEMPTS = 40;
/** An unreadable lock file younger than this is taken to be mid-write (link-less file systems only). */
const UNREADABLE_GRACE_MS = 10_000;

/** Locks this process holds, by lock path: released on exit. */
const held = new Map<string, string>();
/**
 * Nonces of locks this process holds or is creating right now: a lock file
 * naming one of them is never stale for this process (a second handle of the
 * same file in this process must get FLASH_BUSY, even mid-creation).
 */
const ours = new Set<string>();
let exitHook = false;

function releaseAllSync(): void {
  for (const [path, nonce] of held) {
    try {
      if (parseOwner(readFileSync(path, 'utf8'))?.nonce === nonce) unlinkSync(path);
    } catch {
      // Exiting: a lock we cannot remove is stale now (our pid is gone) and is taken over.
    }
  }
  held.clear();
  ours.clear();
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isSafeInteger(o.pid) || typeof o.nonce !== 'string' || typeof o.host !== 'string') return undefined;
    return { pid: o.pid!, ...(typeof o.start === 'string' ? { start: o.start } : {}), host: o.host, command: String(o.command ?? ''), since: String(o.since ?? ''), nonce: o.nonce };
  } catch {
    return undefined;
  }
}

/** `<boot id>:<start time in clock ticks>` of `pid` (Linux /proc, proc(5)), or undefined. */
async function processStart(pid: number): Promise<string | undefined> {
  try {
    const [boot, stat] = await Promise.all([readFile('/proc/sys/kernel/random/boot_id', 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    // Field 22 (starttime), counted after the command name, which may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] === undefined ? undefined : `${boot.trim()}:${fields[19]}`;
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Verdict = 'held' | 'stale';

async function judge(owner: LockOwner): Promise<Verdict> {
  if (owner.host !== hostname()) return 'held';
  if (owner.pid === process.pid && owner.start === (await processStart(process.pid))) {
    // Ours: held by another handle of this process, or left by one that is gone.
    return ours.has(owner.nonce) ? 'held' : 'stale';
  }
  if (!processExists(owner.pid)) return 'stale';
  if (owner.start !== undefined) {
    const now = await processStart(owner.pid);
    if (now !== undefined && now !== owner.start) return 'stale'; // the pid was reused
  }
  return 'held';
}

type Read = { kind: 'absent' } | { kind: 'owner'; owner: LockOwner } | { kind: 'unreadable'; id: string; ageMs: number };

async function readLock(path: string): Promise<Read> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const owner = parseOwner(text);
    return owner ? { kind: 'owner', owner } : { kind: 'unreadable', id: `ino${st.ino}-${st.mtimeMs}-${st.size}`, ageMs: Date.now() - st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new CoapfwError('IO_ERROR', `lock: cannot read ${path}`, { cause: e });
  }
}

const idOf = (r: Exclude<Read, { kind: 'absent' }>): string => (r.kind === 'owner' ? r.owner.nonce : r.id);

/** Create `path` holding `content`, atomically and only if it does not exist. False when it exists. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, content, { flag: 'wx', mode: 0o644 });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // No hard links here (FAT, some FUSE): exclusive create, then write (see UNREADABLE_GRACE_MS).
    try {
      const fh = await open(path, 'wx', 0o644);
      await fh.writeFile(content);
      await fh.close();
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await unlink(tmp).catch(() => undefined); // already gone: nothing to clean
  }
}

function busy(target: string, lockPath: string, r: Exclude<Read, { kind: 'absent' }>): CoapfwError {
  if (r.kind === 'unreadable') return new CoapfwError('FLASH_BUSY', `${target} is being locked by another process (lock file ${lockPath})`, { path: target });
  const o = r.owner;
  const where = o.host === hostname() ? '' : ` on host ${o.host} (if that host no longer uses it, delete ${lockPath})`;
  const cmd = o.command === '' ? '' : ` (${o.command})`;
  return new CoapfwError('FLASH_BUSY', `${target} is in use by process ${o.pid}${cmd}${where} since ${o.since}`, { path: target });
}

/**
 * Remove the lock at `path` if it still is the stale one read as `stale`
 * (see the file comment). Returns when done or when another process is doing it.
 */
async function breakStale(path: string, stale: Exclude<Read, { kind: 'absent' }>, me: string, depth: number): Promise<void> {
  const breaker = `${path}.break-${idOf(stale)}`;
  if (!(await createExclusive(breaker, me))) {
    const b = await readLock(breaker);
    if (b.kind === 'absent') return;
    const dead = b.kind === 'owner' ? (await judge(b.owner)) === 'stale' : b.ageMs > UNREADABLE_GRACE_MS;
    if (dead && depth < MAX_BREAK_DEPTH) await breakStale(breaker, b, me, depth + 1);
    else if (dead) throw new CoapfwError('FLASH_BUSY', `lock: stale lock files of killed processes at ${path}; delete ${path}*`, { path });
    else await new Promise((r) => setTimeout(r, 5)); // another process is taking over right now
    return;
  }
  try {
    const again = await readLock(path);
    if (again.kind !== 'absent' && idOf(again) === idOf(stale)) await unlink(path);
  } finally {
    await unlink(breaker).catch(() => undefined); // gone only if someone broke our breaker: nothing to do
  }
}

/** Remove temporary files of dead processes and breakers of locks that no longer exist, next to `lockPath`. */
async function tidy(lockPath: string, current: string): Promise<void> {
  const dir = dirname(lockPath);
  const base = `${basename(lockPath)}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(base)) continue;
    const rest = name.slice(base.length);
    const tmp = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(rest);
    const brk = /^break-([^.]+)$/.exec(rest);
    // A breaker for a nonce that is not the lock's any more can never be used again (nonces do not repeat).
    if ((tmp && !processExists(Number(tmp[1]))) || (brk && brk[1] !== current)) await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** An exclusive lock on a file, held until {@link FileLock.release} or process exit. */
export class FileLock {
  private released = false;

  private constructor(
    /** The lock file. */
    readonly path: string,
    /** The lock's owner record (this process). */
    readonly owner: LockOwner,
  ) {}

  /**
   * Lock `target` (an existing file) for this process: `FLASH_BUSY` when a
   * live process (or another handle of this one) holds it, naming it;
   * `IO_ERROR` when the lock file cannot be written.
   */
  static async acquire(target: string): Promise<FileLock> {
    let lockPath: string;
    try {
      lockPath = `${await realpath(target)}.lock`;
    } catch (e) {
      throw new CoapfwError('IO_ERROR', `lock: cannot resolve ${target}`, { cause: e, path: target });
    }
    const owner: LockOwner = {
      pid: process.pid,
      ...(await processStart(process.pid).then((s) => (s === undefined ? {} : { start: s }))),
      host: hostname(),
      command: process.argv.slice(1).join(' ').slice(0, 240),
      since: new Date().toISOString(),
      nonce: randomBytes(12).toString('hex'),
    };
    const me = JSON.stringify(owner);
    ours.add(owner.nonce);
    try {
      return await FileLock.take(target, lockPath, owner, me);
    } catch (e) {
      ours.delete(owner.nonce);
      throw e;
    }
  }

  private static async take(target: string, lockPath: string, owner: LockOwner, me: string): Promise<FileLock> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let created: boolean;
      try {
        created = await createExclusive(lockPath, me);
      } catch (e) {
        if (e instanceof CoapfwError) throw e;
        throw new CoapfwError('IO_ERROR', `lock: cannot create ${lockPath}`, { cause: e, path: target });
      }
      if (created) {
        held.set(lockPath, owner.nonce);
        if (!exitHook) {
          exitHook = true;
          process.once('exit', releaseAllSync);
        }
        await tidy(lockPath, owner.nonce);
        return new FileLock(lockPath, owner);
      }
      const cur = await readLock(lockPath);
      if (cur.kind === 'absent') continue;
      const stale = cur.kind === 'owner' ? (await judge(cur.owner)) === 'stale' : cur.ageMs > UNREADABLE_GRACE_MS;
      if (!stale) throw busy(target, lockPath, cur);
      await breakStale(lockPath, cur, me, 0);
    }
    throw new CoapfwError('FLASH_BUSY', `${target}: could not take the lock ${lockPath} (other processes keep taking it)`, { path: target });
  }

  /** Release the lock (remove the lock file if it is still ours). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    held.delete(this.path);
    ours.delete(this.owner.nonce);
    const cur = await readLock(this.path).catch(() => ({ kind: 'absent' }) as const);
    if (cur.kind === 'owner' && cur.owner.nonce === this.owner.nonce) await unlink(this.path).catch(() => undefined); // already gone: released
  }
}
