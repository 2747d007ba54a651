/**
 * The slot writer of the update client: the one place where image bytes
 * reach flash, behind verify-before-write (verified-writer.ts) when the
 * image has per-block digests. The slot is the component's secondary, or on
 * a single-bank device the primary itself (the in-place overwrite).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { writeImageChunk } from '../flash/image.js';
import { updateSlot } from '../flash/layout.js';
import { readStaging } from '../flash/staging.js';
import type { BlockDigestsInfo } from '../suit/types.js';
import { openDigests, type DigestSource } from './block-auth.js';
import type { CandidateImage } from './candidate.js';
import type { UpdateSession } from './session.js';
import { VerifiedWriter } from './verified-writer.js';

/** Digest sources opened in this run, per image (the top list is fetched once per run). */
const opened = new WeakMap<object, Promise<DigestSource | undefined>>();

/**
 * The verified digests of `info` (an image's, or a delta's), opened once per
 * `key`: on a single-bank device from the top list staged with the envelope
 * being installed when there is one (no fetch after a power cut), else
 * fetched from the server.
 */
export function digestsOf(s: UpdateSession, key: object, info: BlockDigestsInfo | undefined): Promise<DigestSource | undefined> {
  let p = opened.get(key);
  if (p === undefined) {
    p = openWithStaged(s, info);
    opened.set(key, p);
    // A failed open is not cached: the next attempt fetches again.
    p.catch(() => opened.delete(key));
  }
  return p;
}

async function openWithStaged(s: UpdateSession, info: BlockDigestsInfo | undefined): Promise<DigestSource | undefined> {
  const { flash, layout } = s.opts;
  const area = layout.recovery?.staging;
  if (info !== undefined && area !== undefined && s.envelopeDigest !== undefined) {
    const staged = await readStaging(flash, area);
    if (staged && equalBytes(sha256(staged.envelope), s.envelopeDigest)) {
      try {
        return await openDigests(s.opts, info, flash.writeAlignment, staged.topList);
      } catch {
        // A staged top list that does not hash to the root: fetch it instead (below).
      }
    }
  }
  return openDigests(s.opts, info, flash.writeAlignment);
}

/** The writer for `img` from byte `start` of it (a resume point): every block checked, then written into its slot. */
export async function openImageWriter(s: UpdateSession, img: CandidateImage, start: number): Promise<VerifiedWriter> {
  const { flash, layout } = s.opts;
  const slot = updateSlot(layout, img.component);
  const digests = await digestsOf(s, img, img.auth);
  return new VerifiedWriter({ size: img.size, start, sink: (o, b) => writeImageChunk(flash, slot, o, b), ...(digests ? { digests } : {}) });
}
