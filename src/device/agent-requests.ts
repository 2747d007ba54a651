/**
 * The agent's requests to the update service besides reports and
 * observations: registration, reading the class manifest a notification
 * announced (client mode), and the answer to an offer (negotiated mode).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fetchAll } from '../blockwise/fetch.js';
import { decodeBlock } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { codeToString, OptionNumber } from '../codec/numbers.js';
import { getOption, pathOptions } from '../codec/options.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { checkManifestConditions, checkManifestDigest, decodeSignedEnvelope, verifyEnvelope } from '../suit/verify.js';
import type { DeviceAgentOptions } from './agent-options.js';
import { answerBody, decodeRegistrationAnswer, postCbor, registrationBody, type OfferAnswer, type RegistrationAnswer } from './agent-wire.js';

/** An error as one line for an event: `CODE: message`. */
export function errorText(e: unknown): string {
  return isCoapfwError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

/** Register (`POST /d/<id>`, or `POST /d` without an id); throws what went wrong (RESPONSE_CODE for a refusal). */
export async function register(o: DeviceAgentOptions, installed: number, running: string, signal: AbortSignal): Promise<RegistrationAnswer> {
  const body = registrationBody({ vendor: bytesToHex(o.vendorId), class: bytesToHex(o.classId), seq: installed, digest: running || undefined, mode: o.mode, group: o.group });
  const path = o.deviceId === undefined ? '/d' : `/d/${encodeURIComponent(o.deviceId)}`;
  const res = await o.link.request(postCbor(path, body), { signal });
  if (res.code >> 5 !== 2) {
    const diagnostic = new TextDecoder().decode(res.payload.slice(0, 120));
    throw new CoapfwError('RESPONSE_CODE', `registration refused: ${codeToString(res.code)}${diagnostic ? ` ${diagnostic}` : ''}`, { responseCode: res.code, path });
  }
  return decodeRegistrationAnswer(res);
}

/**
 * Client mode: the class's newest envelope from a notification (fetched whole
 * when it came block-wise, RFC 7959 §2.6), verified (signature, vendor,
 * class) before it counts; its sequence and content address.
 */
export async function classManifest(o: DeviceAgentOptions, path: string, msg: CoapMessage, signal: AbortSignal): Promise<{ seq: number; manifest: string }> {
  let envelope = msg.payload;
  const block = getOption(msg, OptionNumber.BLOCK2);
  if (block !== undefined && decodeBlock(block).more) {
    envelope = (await fetchAll(o.link.request, { runtime: o.link.runtime, options: pathOptions(path), maxSize: o.update?.maxEnvelopeSize ?? 16384, signal })).data;
  }
  return { seq: Number(classSequence(o, envelope)), manifest: `/fw/sha256/${bytesToHex(sha256(envelope))}` };
}

/**
 * The sequence number of a class envelope once it passed what the agent can
 * check before an update. With a fixed trust policy that is everything
 * (signature, digest, vendor, class). With a trust store the signature waits
 * for the update's verify state, which first brings the trust up to date
 * (a rotation the server announces: the stored keys may not sign the new
 * release yet, trust-check.ts); here the manifest's digest, vendor and class.
 * A forged notification then costs one envelope fetch, refused at verify.
 */
function classSequence(o: DeviceAgentOptions, envelope: Uint8Array): bigint {
  if (o.trust !== undefined) return verifyEnvelope(envelope, { trust: o.trust, vendorId: o.vendorId, classId: o.classId }).sequenceNumber;
  const env = decodeSignedEnvelope(envelope);
  checkManifestDigest(env);
  checkManifestConditions(env.manifest, { vendorId: o.vendorId, classId: o.classId }, undefined);
  return env.manifest.sequenceNumber;
}

/** Answer offer `id` on the command resource; the response code, or undefined when none came. */
export async function answerOffer(o: DeviceAgentOptions, cmdPath: string, id: number, answer: OfferAnswer, signal: AbortSignal): Promise<number | undefined> {
  try {
    return (await o.link.request(postCbor(cmdPath, answerBody(id, answer)), { signal })).code;
  } catch (e) {
    if (isCoapfwError(e, 'ABORTED')) throw e;
    return undefined;
  }
}
