/**
 * TLS 1.2 key derivation for the DTLS PSK profile.
 *
 * - PRF: RFC 5246 §5, P_SHA256 (the only PRF of TLS_PSK_WITH_AES_128_CCM_8, RFC 6655 §3).
 * - PSK pre-master secret: RFC 4279 §2 (`uint16 N, N zero bytes, uint16 N, psk`).
 * - master secret: RFC 5246 §8.1, or the extended master secret of RFC 7627 §4
 *   (PRF over the session hash) when both sides negotiated it.
 * - key block: RFC 5246 §6.3; for AES-128-CCM_8 there is no MAC key, a 16-byte key
 *   and a 4-byte implicit IV (salt) per direction (RFC 6655 §3).
 * - Finished verify_data: RFC 5246 §7.4.9, 12 bytes.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

const enc = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** RFC 5246 §5: PRF(secret, label, seed) = P_SHA256(secret, label + seed), truncated to `length`. */
export function prfSha256(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Uint8Array {
  const labelSeed = concat(enc.encode(label), seed);
  const out = new Uint8Array(length);
  let a = labelSeed; // A(0) = seed
  let off = 0;
  while (off < length) {
    a = hmac(sha256, secret, a); // A(i) = HMAC(secret, A(i-1))
    const block = hmac(sha256, secret, concat(a, labelSeed));
    const n = Math.min(block.length, length - off);
    out.set(block.subarray(0, n), off);
    off += n;
  }
  return out;
}

/** RFC 4279 §2: the plain-PSK pre-master secret. */
export function pskPremaster(psk: Uint8Array): Uint8Array {
  const n = psk.length;
  const out = new Uint8Array(4 + 2 * n);
  out[0] = n >> 8;
  out[1] = n & 0xff;
  out[2 + n] = n >> 8;
  out[3 + n] = n & 0xff;
  out.set(psk, 4 + n);
  return out;
}

/** RFC 5246 §8.1 master secret, 48 bytes. */
export function masterSecret(premaster: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Uint8Array {
  return prfSha256(premaster, 'master secret', concat(clientRandom, serverRandom), 48);
}

/** RFC 7627 §4 extended master secret; `sessionHash` = SHA-256 of the handshake up to ClientKeyExchange. */
export function extendedMasterSecret(premaster: Uint8Array, sessionHash: Uint8Array): Uint8Array {
  return prfSha256(premaster, 'extended master secret', sessionHash, 48);
}

/** Traffic keys of TLS_PSK_WITH_AES_128_CCM_8. */
export interface CcmKeys {
  readonly clientKey: Uint8Array;
  readonly serverKey: Uint8Array;
  readonly clientSalt: Uint8Array;
  readonly serverSalt: Uint8Array;
}

/** RFC 5246 §6.3 key block, cut per RFC 6655 §3 (no MAC keys, 16-byte keys, 4-byte salts). */
export function ccmKeyBlock(master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): CcmKeys {
  const kb = prfSha256(master, 'key expansion', concat(serverRandom, clientRandom), 40);
  return {
    clientKey: kb.slice(0, 16),
    serverKey: kb.slice(16, 32),
    clientSalt: kb.slice(32, 36),
    serverSalt: kb.slice(36, 40),
  };
}

/** RFC 5246 §7.4.9 verify_data over the SHA-256 of all handshake messages so far. */
export function verifyData(master: Uint8Array, sender: 'client' | 'server', handshakeHash: Uint8Array): Uint8Array {
  return prfSha256(master, `${sender} finished`, handshakeHash, 12);
}

export { concat as concatBytes, sha256 };
