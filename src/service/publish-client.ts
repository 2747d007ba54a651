/**
 * The publisher's side of the protocol (what `coapfw publish --server` runs):
 * ask whether the server holds each image (`GET /fw/sha256/<hex>`, one
 * 16-byte block), upload the ones it lacks (`PUT /pub/blob/<hex>`, Block1
 * with Request-Tag), then `POST /pub/release` with the envelope.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { sendBlock1, type Block1Progress } from '../blockwise/block1-send.js';
import { fetchAll } from '../blockwise/fetch.js';
import { encodeBlock } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, codeToString, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { encodeUint, pathOptions } from '../codec/options.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';
import type { RetryPolicy } from '../messaging/retry.js';
import { decodeCborBody } from '../server/body.js';
import { encodeCbor } from '../suit/cbor.js';
import { decodeEnvelope } from '../suit/decode.js';
import type { Urgency } from './model.js';

/** Options of the publish client. */
export interface PublishClientOptions {
  readonly runtime: Runtime;
  /** Block size exponent for uploads (0..6). Default 6. */
  readonly szx?: number;
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Upload progress of each image. */
  readonly onProgress?: (sha256: string, p: Block1Progress) => void;
}

/** What the server said about the release. */
export interface PublishedRemote {
  readonly classId: string;
  readonly sequence: number;
  readonly envelopeSha256: string;
  /** Images uploaded (the others the server held already). */
  readonly uploaded: readonly string[];
}

const decoder = new TextDecoder();

/** RESPONSE_CODE naming the server's code and diagnostic. */
function refused(res: CoapMessage, what: string): CoapfwError {
  const diag = res.payload.length > 0 && res.payload.length < 200 ? `: ${decoder.decode(res.payload)}` : '';
  return new CoapfwError('RESPONSE_CODE', `${what}: server answered ${codeToString(res.code)}${diag}`, { responseCode: res.code });
}

/** Whether the server already serves the blob `sha256` (one 16-byte block: 2.05 or 4.04). */
export async function serverHolds(request: Requester, sha: string, options: PublishClientOptions): Promise<boolean> {
  const res = await request({ code: Code.GET, options: [...pathOptions(`/fw/sha256/${sha}`), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 0, more: false, szx: 0 }) }] }, { signal: options.signal });
  if (res.code === Code.CONTENT) return true;
  if (res.code === Code.NOT_FOUND) return false;
  throw refused(res, `GET /fw/sha256/${sha}`);
}

/** Upload `image` unless the server holds it; true when it was uploaded. */
export async function uploadBlob(request: Requester, image: Uint8Array, options: PublishClientOptions): Promise<boolean> {
  const sha = bytesToHex(sha256(image));
  if (await serverHolds(request, sha, options)) return false;
  const res = await sendBlock1(
    request,
    { code: Code.PUT, options: pathOptions(`/pub/blob/${sha}`), payload: image },
    { runtime: options.runtime, szx: options.szx, retry: options.retry, signal: options.signal, onProgress: (p) => options.onProgress?.(sha, p) },
  );
  if (res.code === Code.CREATED) return true;
  if (res.code === Code.CHANGED) return false; // held after all (another publisher was faster)
  throw refused(res, `PUT /pub/blob/${sha}`);
}

/** `POST /pub/release`; 2.01 gives the class, sequence and envelope address. */
export async function postRelease(request: Requester, release: { envelope: Uint8Array; urgency: Urgency; downtimeS?: number }, options: PublishClientOptions): Promise<Omit<PublishedRemote, 'uploaded'>> {
  const body = new Map<string, unknown>([
    ['envelope', Buffer.from(release.envelope.buffer, release.envelope.byteOffset, release.envelope.byteLength)],
    ['urgency', release.urgency],
    ...(release.downtimeS === undefined ? [] : [['downtime', release.downtimeS] as [string, unknown]]),
  ]);
  const res = await sendBlock1(
    request,
    { code: Code.POST, options: [...pathOptions('/pub/release'), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(ContentFormat.CBOR) }], payload: encodeCbor(body) },
    { runtime: options.runtime, szx: options.szx, retry: options.retry, signal: options.signal },
  );
  if (res.code !== Code.CREATED) throw refused(res, 'POST /pub/release');
  const map = decodeCborBody(res.payload, 'release answer') as Record<string, unknown>;
  return { classId: String(map.class), sequence: Number(map.seq), envelopeSha256: String(map.envelope) };
}

/** Upload the images the server lacks, then publish the envelope. */
export async function publishRemote(
  request: Requester,
  release: { envelope: Uint8Array; images: readonly Uint8Array[]; urgency: Urgency; downtimeS?: number },
  options: PublishClientOptions,
): Promise<PublishedRemote> {
  const uploaded: string[] = [];
  for (const image of release.images) if (await uploadBlob(request, image, options)) uploaded.push(bytesToHex(sha256(image)));
  return { ...(await postRelease(request, release, options)), uploaded };
}

/** The sequence number of the newest release of a class on the server, or undefined (4.04: none yet). */
export async function latestRemoteSequence(request: Requester, classId: string, options: PublishClientOptions): Promise<number | undefined> {
  try {
    const { data } = await fetchAll(request, { runtime: options.runtime, options: pathOptions(`/m/${classId}`), signal: options.signal, maxSize: 256 * 1024, retry: options.retry });
    return Number(decodeEnvelope(data).manifest.sequenceNumber);
  } catch (e) {
    if (e instanceof CoapfwError && e.code === 'RESPONSE_CODE' && e.responseCode === Code.NOT_FOUND) return undefined;
    throw e;
  }
}
