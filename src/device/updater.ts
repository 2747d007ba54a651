/**
 * The constrained update client: one `step` transition function over the
 * named states of states.ts, and {@link runUpdate}, which drives it with
 * bounded, jittered back-off on the injected Runtime.
 *
 * Durable state is the resume journal (progress.ts): on start the client
 * fetches and verifies the envelope, then continues where the journal says
 * when it is the same envelope (same SHA-256) and the image's ETag is
 * unchanged; anything else starts over cleanly. The image goes straight
 * from each Block2 response into the secondary slot (one block in memory),
 * with a journal record per completed erase block, so a power cut costs at
 * most one erase block of download.
 *
 * Boot-model rules (device/boot.ts): the secondary slot is written only
 * while the running image is confirmed, and the install is one
 * `requestTestBoot`; the next `boot()` runs the new image in test mode and
 * `powerOn` (device.ts) confirms it.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { fetchAll, fetchBlocks } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import { parseCoapUri, uriOptions } from '../codec/uri.js';
import { CoapfwError } from '../errors.js';
import { hashArea, resumeOffset, writeImageChunk } from '../flash/image.js';
import { Journal, matchesDigestPrefix } from '../flash/journal.js';
import { planUpdate } from '../suit/plan.js';
import { verifyEnvelope } from '../suit/verify.js';
import { readBootState, requestTestBoot } from './boot.js';
import { equalBytes } from '@noble/curves/utils.js';
import { fetchTarget } from './fetch-target.js';
import { imageRequestOptions } from './image-uri.js';
import { fetchingRecord, installRecord, readInstalledSequence, reconcileJournal } from './progress.js';
import { recover, restart } from './recovery.js';
import { postStatus, type UpdateStatus } from './report.js';
import { UpdateSession, endsTheRun, makeStatus } from './session.js';
import type { Candidate, UpdateOptions, UpdateState } from './states.js';

export { UpdateSession };

/** The transition function: perform the state's work and return the next state. */
export async function step(s: UpdateSession, state: UpdateState): Promise<UpdateState> {
  switch (state.name) {
    case 'check':
      return check(s);
    case 'verify':
      return verify(s, state.envelope);
    case 'download':
      return download(s, state);
    case 'verify-image':
      return verifyImage(s, state);
    case 'install':
      return install(s, state);
    case 'report':
      return report(s, state.status);
    case 'done':
      return state;
    default: {
      const never: never = state;
      throw new CoapfwError('INVALID_ARGUMENT', `updater: unknown state ${JSON.stringify(never)}`);
    }
  }
}

async function check(s: UpdateSession): Promise<UpdateState> {
  const { opts } = s;
  const { data } = await fetchAll(opts.request, {
    runtime: opts.runtime,
    options: uriOptions(parseCoapUri(opts.manifestUri)),
    maxSize: opts.maxEnvelopeSize ?? 16384,
    retry: opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
    signal: opts.signal,
    responseTimeoutMs: opts.responseTimeoutMs,
  });
  return { name: 'verify', envelope: data };
}

function safeSequence(seq: bigint): number {
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: sequence number ${seq} above 2^53-1`);
  return Number(seq);
}

async function verify(s: UpdateSession, envelope: Uint8Array): Promise<UpdateState> {
  const { opts } = s;
  const v = verifyEnvelope(envelope, { trust: opts.trust, vendorId: opts.vendorId, classId: opts.classId });
  const seq = safeSequence(v.sequenceNumber);
  s.candidateSequence = seq;
  const envelopeDigest = sha256(envelope);
  s.envelopeDigest = envelopeDigest;
  const rec = s.record;
  // RFC 9124 §4.3.2: only a strictly greater sequence number is installed.
  if (seq <= s.installed) {
    if (seq === s.installed) return { name: 'report', status: s.status('up-to-date') };
    throw new CoapfwError('ROLLBACK', `manifest: sequence ${seq} is not newer than the installed ${s.installed}`);
  }
  const plan = planUpdate(v.manifest, { vendorId: opts.vendorId, classId: opts.classId, componentSlot: 1 });
  // Digest and size from the image-match checks after the fetch (§8.4.9.2), not the fetch-time parameters.
  const img = fetchTarget(plan);
  if (img.size > opts.layout.secondary.size) {
    throw new CoapfwError('IMAGE_TOO_LARGE', `manifest: image of ${img.size} bytes exceeds the ${opts.layout.secondary.size}-byte slot`);
  }
  const job: Candidate = {
    envelopeDigest,
    imageDigest: img.digest,
    size: img.size,
    sequence: seq,
    imageOptions: imageRequestOptions(opts.manifestUri, img.uri),
  };
  s.emit({ type: 'envelope', bytes: envelope.length, sequence: seq, imageSize: img.size });
  const szx = opts.szx ?? 6;
  // The journal keeps 16-byte digest prefixes (flash/journal.ts); the full
  // image digest is checked again before install (verifyImage).
  if (
    rec === undefined ||
    rec.phase === 'idle' ||
    rec.candidateSeq !== seq ||
    !matchesDigestPrefix(envelopeDigest, rec.envelopeDigestPrefix) ||
    !matchesDigestPrefix(job.imageDigest, rec.imageDigestPrefix)
  ) {
    return { name: 'download', job, startBlock: 0, szx, etag: undefined };
  }
  if (rec.phase === 'fetching') {
    const bs = blockSize(rec.szx);
    const from = resumeOffset(opts.flash, rec.nextBlock * bs);
    const startBlock = from % bs === 0 && rec.etag.length > 0 ? from / bs : 0;
    s.blocksResumed = startBlock;
    s.emit({ type: 'resume', fromBlock: startBlock, blockSize: bs, phase: 'fetching' });
    return startBlock === 0
      ? { name: 'download', job, startBlock: 0, szx, etag: undefined }
      : { name: 'download', job, startBlock, szx: rec.szx, etag: rec.etag };
  }
  // fetched / installing: the image is (or was) complete in the slot.
  s.blocksResumed = Math.ceil(job.size / blockSize(szx));
  s.emit({ type: 'resume', fromBlock: s.blocksResumed, blockSize: blockSize(szx), phase: rec.phase });
  return { name: 'verify-image', job, attempts: rec.phase === 'installing' ? rec.reverts : 0, fresh: false };
}

type DownloadState = Extract<UpdateState, { name: 'download' }>;

async function download(s: UpdateSession, st: DownloadState): Promise<UpdateState> {
  const { opts, journal } = s;
  const { flash, layout } = opts;
  const { job } = st;
  const installed = s.installed;
  const ebs = flash.eraseBlockSize;
  if (st.startBlock === 0) {
    // A clean start: forget any older progress before the slot is touched.
    await journal.append(fetchingRecord(installed, job, st.szx, 0, undefined));
  }
  let journaledAt = st.startBlock * blockSize(st.szx);
  let end = journaledAt;
  const blocks = fetchBlocks(opts.request, {
    runtime: opts.runtime,
    options: job.imageOptions,
    startBlock: st.startBlock,
    szx: st.szx,
    etag: st.etag,
    // The endless-data attack: refuse as soon as a block goes past the size the image-match checks state.
    maxSize: job.size,
    retry: opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
    signal: opts.signal,
    responseTimeoutMs: opts.responseTimeoutMs,
  });
  for await (const b of blocks) {
    await writeImageChunk(flash, layout.secondary, b.offset, b.data);
    s.blocksFetched++;
    end = b.offset + b.data.length;
    s.emit({ type: 'block', num: b.num, offset: b.offset, bytes: b.data.length, imageSize: job.size });
    const bs = blockSize(b.szx);
    // Journal once per completed erase block; `end` is then erase-block aligned.
    if (b.more && Math.floor(end / ebs) > Math.floor(journaledAt / ebs) && end % bs === 0) {
      await journal.append(fetchingRecord(installed, job, b.szx, end / bs, b.etag));
      journaledAt = end;
      s.emit({ type: 'journal', nextBlock: end / bs, blockSize: bs });
    }
  }
  if (end !== job.size) {
    throw new CoapfwError('DIGEST_MISMATCH', `image: the server sent ${end} bytes, the manifest says ${job.size}`);
  }
  await journal.append(installRecord('fetched', installed, job, 0));
  return { name: 'verify-image', job, attempts: 0, fresh: st.startBlock === 0 };
}

type VerifyImageState = Extract<UpdateState, { name: 'verify-image' }>;

async function verifyImage(s: UpdateSession, st: VerifyImageState): Promise<UpdateState> {
  const { flash, layout } = s.opts;
  const digest = await hashArea(flash, layout.secondary, st.job.size);
  if (equalBytes(digest, st.job.imageDigest)) return { name: 'install', job: st.job, attempts: st.attempts };
  if (st.fresh) throw new CoapfwError('DIGEST_MISMATCH', 'image: the downloaded image does not match the manifest digest');
  // Resumed from the journal and the slot does not hold the image (reverted
  // swap, torn state): download it again from the start.
  return restart(s, st.job, 'the slot does not hold the image the journal describes');
}

type InstallState = Extract<UpdateState, { name: 'install' }>;

async function install(s: UpdateSession, st: InstallState): Promise<UpdateState> {
  const { flash, layout, maxInstallAttempts } = s.opts;
  if (st.attempts >= (maxInstallAttempts ?? 3)) {
    throw new CoapfwError('UPDATE_FAILED', `install: the image was reverted ${st.attempts} times; giving up on this manifest`);
  }
  // Journal first: if power fails after the boot request, the next boot runs
  // the image and powerOn finds the candidate sequence to record.
  await s.journal.append(installRecord('installing', s.installed, st.job, st.attempts));
  await requestTestBoot(flash, layout, { imageDigest: st.job.imageDigest, size: st.job.size });
  return { name: 'report', status: s.status('installed') };
}

async function report(s: UpdateSession, status: UpdateStatus): Promise<UpdateState> {
  const code = await sendReport(s.opts, status);
  s.emit({ type: 'status', status, responseCode: code });
  return { name: 'done', status };
}

/** Hand `status` to onStatus and POST it to `statusPath` (best effort); the response code, if any. */
export async function sendReport(opts: Pick<UpdateOptions, 'onStatus' | 'statusPath' | 'request' | 'signal'>, status: UpdateStatus): Promise<number | undefined> {
  await opts.onStatus?.(status);
  return opts.statusPath === undefined ? undefined : await postStatus(opts.request, opts.statusPath, status, opts.signal);
}

function checkOptions(o: UpdateOptions): void {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `runUpdate: ${m}`);
  if (!o || typeof o.request !== 'function' || !o.runtime || !o.flash || !o.layout) throw bad('flash, layout, request and runtime are required');
  parseCoapUri(o.manifestUri);
  const int = (v: number | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) throw bad(`${name} must be an integer ${min}..${max}, got ${v}`);
  };
  int(o.szx, 'szx', 0, 6);
  int(o.maxRestarts, 'maxRestarts', 0);
  int(o.maxEnvelopeSize, 'maxEnvelopeSize', 1);
  // The journal counts reverted test boots in one byte.
  int(o.maxInstallAttempts, 'maxInstallAttempts', 1, 255);
  for (const [name, id] of [['vendorId', o.vendorId], ['classId', o.classId]] as const) {
    if (id !== undefined && (!(id instanceof Uint8Array) || id.length !== 16)) throw bad(`${name} must be 16 bytes`);
  }
}

/**
 * Open the journal and check the device can take an update: the running
 * image confirmed (`BOOT_STATE`), the journal readable (`JOURNAL_CORRUPT`:
 * anti-rollback needs the installed sequence number), a finished install
 * recorded. Nothing is fetched or written for the update before this passes.
 */
async function openSession(opts: UpdateOptions): Promise<UpdateSession> {
  const journal = await Journal.open(opts.flash, opts.layout);
  journal.latest();
  const bootState = await readBootState(opts.flash, opts.layout);
  if (bootState === undefined || bootState.swap !== null || bootState.primaryMode !== 'confirmed') {
    throw new CoapfwError('BOOT_STATE', 'update: boot and confirm the running image before updating');
  }
  await reconcileJournal(journal, bootState.primary?.digest);
  return new UpdateSession(opts, journal);
}

/**
 * Run one update attempt to its end and return the status report, which it
 * also hands to `onStatus` and POSTs to `statusPath`: every outcome is
 * reported, a device that cannot update (`BOOT_STATE`: the running image is
 * not confirmed; `JOURNAL_CORRUPT`: the journal holds records this firmware
 * cannot read, so the installed sequence number is unknown, and updates are
 * refused before anything is fetched or written until the device is
 * re-provisioned) included, as `failed`. Throws only for misuse
 * (`INVALID_ARGUMENT`, `BAD_URI`), `POWER_CUT` from the flash, `ABORTED`,
 * and what `onStatus` throws.
 *
 * @example
 * const client = await openClient(manifestUri);
 * const status = await runUpdate({ flash, layout, request: client.request, manifestUri, runtime: client.runtime, trust });
 * if (status.result === 'installed') await powerOn(flash, layout); // boots the test image and confirms it
 */
export async function runUpdate(opts: UpdateOptions): Promise<UpdateStatus> {
  checkOptions(opts);
  let s: UpdateSession;
  try {
    s = await openSession(opts);
  } catch (e) {
    if (endsTheRun(e)) throw e;
    const status = makeStatus('failed', undefined, await readInstalledSequence(opts.flash, opts.layout), e);
    const code = await sendReport(opts, status);
    opts.onEvent?.({ type: 'status', status, responseCode: code });
    return status;
  }
  let state: UpdateState = { name: 'check' };
  while (state.name !== 'done') {
    s.emit({ type: 'state', state: state.name });
    try {
      state = await step(s, state);
    } catch (e) {
      state = await recover(s, state, e);
    }
  }
  return state.status;
}
