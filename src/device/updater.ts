/**
 * The constrained update client: one `step` transition function over the
 * named states of states.ts, and {@link runUpdate}, which drives it with
 * bounded, jittered back-off on the injected Runtime.
 *
 * Durable state is the resume journal (progress.ts): on start the client
 * fetches and verifies the envelope, then continues where the journal says
 * when it is the same envelope (same SHA-256) and the image's ETag is
 * unchanged; anything else starts over cleanly. Every image the manifest
 * fetches goes into its own component's secondary slot (download.ts: one
 * block in memory, a journal record per completed erase block, so a power
 * cut costs at most one erase block of download); an integrated payload
 * (`#name`, draft-ietf-suit-manifest §7.5) comes from the envelope itself.
 * With block digests in the manifest every block is checked before it is
 * written (verified-writer.ts); an image offered as a delta is rebuilt from
 * the installed one (delta-apply.ts); a single-bank device writes over its
 * running image instead (inplace.ts, boot-inplace.ts).
 *
 * Boot-model rules (device/boot.ts): the secondary slots are written only
 * while the running set is confirmed, and the install is one
 * `requestTestBoot` for the whole set; the next `boot()` swaps all of it in
 * (or none) and runs it in test mode, and `powerOn` (device.ts) confirms it.
 */
import { MAX_BLOCKS } from '../blockwise/bitmap.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fetchAll } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import { parseCoapUri, uriOptions } from '../codec/uri.js';
import { CoapfwError } from '../errors.js';
import { hashArea } from '../flash/image.js';
import { updateSlot } from '../flash/layout.js';
import { Journal, matchesDigestPrefix } from '../flash/journal.js';
import { planUpdate } from '../suit/plan.js';
import { readBootState, requestTestBoot } from './boot.js';
import { runningSetDigest } from './boot-state.js';
import { equalBytes } from '@noble/curves/utils.js';
import { setIdentity } from './candidate.js';
import { resumeJob } from './resume.js';
import { download } from './download.js';
import { installInPlace } from './inplace.js';
import { deviceIdentity, updateImages } from './update-plan.js';
import { installRecord, readInstalledSequence, reconcileJournal } from './progress.js';
import { recover, restart } from './recovery.js';
import { firstCheckDelay, reportForChannel } from './privacy.js';
import { postStatus, type UpdateStatus } from './report.js';
import { UpdateSession, endsTheRun, makeStatus } from './session.js';
import { verifyManifest } from './trust-check.js';
import { openDeviceTrust } from './trust-device.js';
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
  // Trust store devices first bring their trust up to date (device/trust-refresh.ts).
  const v = await verifyManifest(s, envelope);
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
  s.envelope = envelope;
  const identity = await deviceIdentity(opts);
  const plan = planUpdate(v.manifest, identity);
  // Digests and sizes from the image-match checks after each fetch (§8.4.9.2), not the fetch-time parameters.
  const images = updateImages(plan, v.manifest, identity, opts, v.envelope, envelope.length);
  const set = setIdentity(images);
  const job: Candidate = { envelopeDigest, imageDigest: set.digest, size: set.size, sequence: seq, images };
  s.emit({ type: 'envelope', bytes: envelope.length, sequence: seq, imageSize: set.size, images: images.length });
  const szx = opts.szx ?? 6;
  // The journal keeps 16-byte digest prefixes (flash/journal.ts); the full
  // image digests are checked again before install (verifyImage).
  if (
    rec === undefined ||
    rec.phase === 'idle' ||
    rec.candidateSeq !== seq ||
    !matchesDigestPrefix(envelopeDigest, rec.envelopeDigestPrefix) ||
    !matchesDigestPrefix(job.imageDigest, rec.imageDigestPrefix)
  ) {
    return { name: 'download', job, image: 0, startBlock: 0, szx, etag: undefined };
  }
  if (rec.phase === 'fetching' || rec.phase === 'applying') return resumeJob(s, job, rec);
  // fetched / installing: the images are (or were) complete in the slots.
  s.blocksResumed = images.reduce((n, i) => n + Math.ceil(i.size / blockSize(szx)), 0);
  s.emit({ type: 'resume', fromBlock: s.blocksResumed, blockSize: blockSize(szx), phase: rec.phase });
  return { name: 'verify-image', job, attempts: rec.phase === 'installing' ? rec.reverts : 0, fresh: false };
}

type VerifyImageState = Extract<UpdateState, { name: 'verify-image' }>;

async function verifyImage(s: UpdateSession, st: VerifyImageState): Promise<UpdateState> {
  const { flash, layout } = s.opts;
  for (const [k, img] of st.job.images.entries()) {
    if (equalBytes(await hashArea(flash, updateSlot(layout, img.component), img.size), img.digest)) continue;
    const which = st.job.images.length > 1 ? ` ${k} (component ${img.component})` : '';
    if (st.fresh) throw new CoapfwError('DIGEST_MISMATCH', `image${which}: the downloaded image does not match the manifest digest`);
    // Resumed from the journal and a slot does not hold its image (reverted
    // swap, torn state): download the set again from the start.
    return restart(s, st.job, `the slot${which} does not hold the image the journal describes`);
  }
  return { name: 'install', job: st.job, attempts: st.attempts };
}

type InstallState = Extract<UpdateState, { name: 'install' }>;

async function install(s: UpdateSession, st: InstallState): Promise<UpdateState> {
  const { flash, layout, maxInstallAttempts } = s.opts;
  if (st.attempts >= (maxInstallAttempts ?? 3)) {
    throw new CoapfwError('UPDATE_FAILED', `install: the image was reverted ${st.attempts} times; giving up on this manifest`);
  }
  // A single-bank device wrote the image in place: naming it in the boot record installs it.
  if (layout.recovery) return installInPlace(s, st.job);
  // Journal first: if power fails after the boot request, the next boot runs
  // the images and powerOn finds the candidate sequence to record.
  await s.journal.append(installRecord('installing', s.installed, st.job, st.attempts));
  // One request for the whole set: the bootloader swaps all of it in, or none (device/boot.ts).
  await requestTestBoot(flash, layout, { images: st.job.images.map((i) => ({ component: i.component, imageDigest: i.digest, size: i.size })) });
  return { name: 'report', status: s.status('installed') };
}

async function report(s: UpdateSession, status: UpdateStatus): Promise<UpdateState> {
  const code = await sendReport(s.opts, status);
  s.emit({ type: 'status', status, responseCode: code });
  return { name: 'done', status };
}

/**
 * Hand `status` to onStatus and POST it to `statusPath` (best effort; over
 * plain CoAP without its free-text message: device/privacy.ts); the response code, if any.
 */
export async function sendReport(opts: Pick<UpdateOptions, 'onStatus' | 'statusPath' | 'request' | 'signal' | 'manifestUri'>, status: UpdateStatus): Promise<number | undefined> {
  await opts.onStatus?.(status);
  return opts.statusPath === undefined ? undefined : await postStatus(opts.request, opts.statusPath, reportForChannel(opts.manifestUri, status), opts.signal);
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
  int(o.maxTrustChainBytes, 'maxTrustChainBytes', 1);
  int(o.firstCheckDelayMs, 'firstCheckDelayMs', 0, 24 * 3600_000);
  int(o.maxAhead, 'maxAhead', 1, MAX_BLOCKS);
  if (o.openStream !== undefined && typeof o.openStream !== 'function') throw bad('openStream must be a function');
  // A device with a trust store never takes keys from its caller (device/trust-device.ts).
  if (o.layout.trust !== undefined && o.trust !== undefined) throw bad('the layout has a trust area: trust comes from the trust store, pass no `trust` (provision the store instead)');
  if (o.layout.trust === undefined && o.trust === undefined) throw bad('give `trust` (a TrustPolicy), or a layout with a trust area');
  for (const [name, id] of [['vendorId', o.vendorId], ['classId', o.classId]] as const) {
    if (id !== undefined && (!(id instanceof Uint8Array) || id.length !== 16)) throw bad(`${name} must be 16 bytes`);
  }
}

/**
 * Open the journal and check the device can take an update: the running
 * image confirmed (`BOOT_STATE`), the journal readable (`JOURNAL_CORRUPT`:
 * anti-rollback needs the installed sequence number), a finished install
 * recorded; with a trust area, the trust store provisioned and readable
 * (`TRUST_NOT_PROVISIONED`, `TRUST_STORE_CORRUPT`) and naming the
 * manifest's server as the source (`SOURCE_MISMATCH`). Nothing is fetched
 * or written for the update before this passes.
 */
async function openSession(opts: UpdateOptions): Promise<UpdateSession> {
  const journal = await Journal.open(opts.flash, opts.layout);
  journal.latest();
  const bootState = await readBootState(opts.flash, opts.layout);
  if (bootState === undefined || bootState.swap !== null || bootState.primaryMode !== 'confirmed') {
    throw new CoapfwError('BOOT_STATE', 'update: boot and confirm the running image before updating');
  }
  await reconcileJournal(journal, runningSetDigest(bootState));
  const session = new UpdateSession(opts, journal);
  if (opts.layout.trust !== undefined) session.trust = await openDeviceTrust(opts.flash, opts.layout, opts.manifestUri);
  return session;
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
 * and what `onStatus` throws. `first` is where the state machine starts:
 * `check` (fetch the envelope), or `verify` with an envelope the device
 * kept (the single-bank recovery loader, inplace-device.ts).
 *
 * @example
 * const client = await openClient(manifestUri);
 * const status = await runUpdate({ flash, layout, request: client.request, manifestUri, runtime: client.runtime, trust });
 * if (status.result === 'installed') await powerOn(flash, layout); // boots the test image and confirms it
 */
export async function runUpdate(opts: UpdateOptions, first: UpdateState = { name: 'check' }): Promise<UpdateStatus> {
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
  // Privacy (device/privacy.ts): the first request does not tell when the device was switched on.
  await firstCheckDelay(opts.runtime, opts.firstCheckDelayMs, opts.signal);
  // `first`: where to start; the single-bank recovery loader starts at verify, with its staged envelope.
  let state: UpdateState = first;
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
