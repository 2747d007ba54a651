/**
 * Amplification protection with RFC 9175 Echo (§2.4, §2.5): a spoofed 20-byte
 * GET that draws a 1 KiB block makes the server a 50x amplifier. Before the
 * server sends a response larger than `factor` times the request to an
 * address it has not verified, it answers 4.01 Unauthorized with an Echo
 * value; a real client repeats the request with it, which proves it receives
 * at that address.
 *
 * Echo values are stateless: `t (4 bytes, seconds) || HMAC-SHA256(secret,
 * peer || t)[0..8]`, so a flood of spoofed requests creates no state. Only
 * verified peers are remembered, in a bounded, expiring table. The guard
 * decides from Echo alone (an address the endpoint verified by an ACK is
 * still challenged), and tells the endpoint of each address it verifies.
 *
 * Without the guard the endpoint still limits what follows the first
 * response to an unverified address (messaging/verified.ts): the guard adds
 * the limit on that first response.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { encodeMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { getOption } from '../codec/options.js';
import type { RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { peerKey, type Peer } from '../core/transport.js';

/** Echo guard settings. */
export interface EchoGuardOptions {
  readonly runtime: Runtime;
  /** Largest response, as a multiple of the request size, sent to an unverified peer. Default 3 (RFC 9175 §2.4). */
  readonly factor?: number;
  /** How long an Echo value is accepted. Default 60 s. */
  readonly echoLifetimeMs?: number;
  /** How long a verified address stays verified. Default 300 s. */
  readonly verifiedLifetimeMs?: number;
  /** Verified addresses remembered at most. Default 10000. */
  readonly maxVerifiedPeers?: number;
}

/** Counters of the guard. */
export interface EchoGuardStats {
  challenged: number;
  verified: number;
  rejectedEcho: number;
}

const encoder = new TextEncoder();

/** Wrap `handler` with the Echo amplification guard. */
export function echoGuard(handler: RequestHandler, options: EchoGuardOptions): RequestHandler & { stats: EchoGuardStats; isVerified(peer: Peer): boolean } {
  const rt = options.runtime;
  const factor = options.factor ?? 3;
  const echoLifetime = options.echoLifetimeMs ?? 60_000;
  const verifiedLifetime = options.verifiedLifetimeMs ?? 300_000;
  const maxVerified = options.maxVerifiedPeers ?? 10_000;
  const secret = rt.randomBytes(32);
  const verified = new Map<string, number>(); // peer -> expiry, insertion ordered
  const stats: EchoGuardStats = { challenged: 0, verified: 0, rejectedEcho: 0 };

  const mac = (peer: string, t: number): Uint8Array => {
    const msg = new Uint8Array([...encoder.encode(peer), t >>> 24, (t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff]);
    return hmac(sha256, secret, msg).subarray(0, 8);
  };
  const makeEcho = (peer: string): Uint8Array => {
    const t = Math.floor(rt.now() / 1000) >>> 0;
    const v = new Uint8Array(12);
    v.set([t >>> 24, (t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff]);
    v.set(mac(peer, t), 4);
    return v;
  };
  const checkEcho = (peer: string, v: Uint8Array): boolean => {
    if (v.length !== 12) return false;
    const t = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
    if (rt.now() / 1000 - t > echoLifetime / 1000 + 1) return false;
    const m = mac(peer, t);
    let diff = 0;
    for (let i = 0; i < 8; i++) diff |= m[i]! ^ v[4 + i]!;
    return diff === 0;
  };
  const isVerified = (peer: string): boolean => {
    const exp = verified.get(peer);
    if (exp === undefined) return false;
    if (exp > rt.now()) return true;
    verified.delete(peer);
    return false;
  };
  const markVerified = (peer: string): void => {
    verified.delete(peer);
    while (verified.size >= maxVerified) verified.delete(verified.keys().next().value!);
    verified.set(peer, rt.now() + verifiedLifetime);
    stats.verified++;
  };

  const guard = (req: Parameters<RequestHandler>[0]) => {
    const peer = peerKey(req.peer);
    if (!isVerified(peer)) {
      const echo = getOption(req.message, OptionNumber.ECHO);
      if (echo !== undefined && checkEcho(peer, echo)) {
        markVerified(peer);
        // The endpoint's own table too: retransmissions and Observe notifications to it are no longer limited.
        req.endpoint?.markVerified(req.peer);
      } else if (echo !== undefined) stats.rejectedEcho++;
    }
    if (!isVerified(peer) && getOption(req.message, OptionNumber.OBSERVE) !== undefined) {
      // An Observe registration from an unverified address would let later
      // notifications amplify towards a spoofed victim: verify it first.
      stats.challenged++;
      return { code: Code.UNAUTHORIZED, options: [{ number: OptionNumber.ECHO, value: makeEcho(peer) }] };
    }
    const result = handler(req);
    if (isVerified(peer)) return result;
    const limit = factor * (req.size ?? encodeMessage(req.message).length);
    const decide = (spec: ResponseSpec | undefined): ResponseSpec | undefined => {
      if (spec === undefined || responseSize(spec, req.message.token.length) <= limit) return spec;
      stats.challenged++;
      return { code: Code.UNAUTHORIZED, options: [{ number: OptionNumber.ECHO, value: makeEcho(peer) }] };
    };
    return result instanceof Promise ? result.then(decide) : decide(result);
  };
  // Whether `peer` showed a valid Echo value lately: a Q-Block2 burst goes only to such an address.
  return Object.assign(guard, { stats, isVerified: (peer: Peer) => isVerified(peerKey(peer)) });
}

/** Upper bound of the encoded size of a response. */
function responseSize(spec: ResponseSpec, tokenLength: number): number {
  let n = 4 + tokenLength + (spec.payload && spec.payload.length > 0 ? 1 + spec.payload.length : 0);
  for (const o of spec.options ?? []) n += 5 + o.value.length;
  return n;
}
