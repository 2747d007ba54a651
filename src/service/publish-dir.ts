/**
 * Publishing into a served directory, without a database or the network
 * (`coapfw publish --dir DIR`): the same checks as the service's publish
 * (publish.ts `checkRelease`), then, under `DIR/<class-hex>/`:
 *
 * - each image as `<sha256>.bin` (content-addressed, so two releases that
 *   share an image share the file, and `coapfw serve` serves it at
 *   `/fw/sha256/<hex>` as well);
 * - the envelope as `<seq>.suit`: the commit point. It is created with
 *   link(2) from a finished temporary file, which fails when the name
 *   exists, so of two publishers racing for one sequence exactly one wins;
 * - `latest.suit`, replaced by rename(2) when the new sequence is the
 *   highest: what devices observe at `/files/<class-hex>/latest.suit`.
 *
 * Of two publishers racing for one sequence the loser's images stay (whole,
 * under their content address, perhaps the winner's too); nothing names them.
 * Every file is written under a hidden temporary name first (`.name.RANDOM.tmp`,
 * which the file server never serves) and flushed to disk before it gets its
 * name: nothing half-written is ever visible.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fileError } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import type { SuitLimits } from '../suit/limits.js';
import type { TrustPolicy } from '../suit/trust.js';
import { checkRelease, type CheckedRelease } from './publish.js';

/** What was written. */
export interface DirectoryRelease extends CheckedRelease {
  readonly envelopePath: string;
  readonly imagePaths: readonly string[];
  /** Whether `latest.suit` now names this release. */
  readonly latest: boolean;
}

/** The sequence numbers published in `DIR/<class-hex>/` (`<n>.suit` files), ascending. */
export async function directorySequences(dir: string, classId: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, classId));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fileError(e, join(dir, classId));
  }
  return names
    .map((n) => /^(\d{1,16})\.suit$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Write `bytes` to a hidden temporary file next to `final`, flushed; returns its path. */
async function writeTemp(final: string, bytes: Uint8Array): Promise<string> {
  const dir = join(final, '..');
  const tmp = join(dir, `.${final.slice(dir.length + 1)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644).catch((e: unknown) => {
    throw fileError(e, tmp);
  });
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return tmp;
}

/** Give `tmp` the name `final` unless that exists; true when this call created it. */
async function linkNew(tmp: string, final: string): Promise<boolean> {
  try {
    await link(tmp, final);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fileError(e, final);
  } finally {
    await unlink(tmp).catch(() => undefined); // the temporary name only: the file lives on under `final`
  }
}

/**
 * Check and write a release into `dir`. `images` are the bytes of every image
 * the manifest fetches. ALREADY_EXISTS / CONFLICT when the sequence is taken
 * or not above the highest published one.
 */
export async function publishToDirectory(dir: string, envelope: Uint8Array, images: readonly Uint8Array[], options: { trust: TrustPolicy; limits?: Partial<SuitLimits> }): Promise<DirectoryRelease> {
  const checked = checkRelease(envelope, options.trust, options.limits);
  const byDigest = new Map(images.map((b) => [bytesToHex(sha256(b)), b]));
  for (const ref of checked.images) {
    const bytes = byDigest.get(ref.sha256);
    if (bytes === undefined) throw new CoapfwError('BLOB_MISSING', `publish: the manifest fetches ${ref.uri} (${ref.sha256}), which is not among the images given`);
    if (bytes.length !== ref.size) throw new CoapfwError('INVALID_ARGUMENT', `publish: image ${ref.sha256} has ${bytes.length} bytes, the manifest says ${ref.size}`);
  }
  const classDir = join(dir, checked.classId);
  await mkdir(classDir, { recursive: true }).catch((e: unknown) => {
    throw fileError(e, classDir);
  });
  const existing = await directorySequences(dir, checked.classId);
  const newest = existing.at(-1);
  if (existing.includes(checked.sequence)) throw new CoapfwError('ALREADY_EXISTS', `publish: ${join(classDir, `${checked.sequence}.suit`)} exists`);
  if (newest !== undefined && checked.sequence < newest) throw new CoapfwError('CONFLICT', `publish: sequence ${checked.sequence} is not above the newest ${newest} in ${classDir}`);
  const imagePaths: string[] = [];
  for (const ref of checked.images) {
    const path = join(classDir, `${ref.sha256}.bin`);
    await linkNew(await writeTemp(path, byDigest.get(ref.sha256)!), path); // already there: the same bytes
    imagePaths.push(path);
  }
  const envelopePath = join(classDir, `${checked.sequence}.suit`);
  if (!(await linkNew(await writeTemp(envelopePath, envelope), envelopePath))) {
    // Another publisher took this sequence a moment ago: its release stands. Our images stay: they are
    // complete and content-addressed, and the winner's release may name the same file.
    throw new CoapfwError('ALREADY_EXISTS', `publish: ${envelopePath} was created by another publisher`);
  }
  const latest = (await directorySequences(dir, checked.classId)).at(-1) === checked.sequence;
  if (latest) {
    const latestPath = join(classDir, 'latest.suit');
    const tmp = await writeTemp(latestPath, envelope);
    await rename(tmp, latestPath).catch((e: unknown) => {
      throw fileError(e, latestPath);
    });
  }
  return { ...checked, envelopePath, imagePaths, latest };
}
