/**
 * The keys of one ClientKeyExchange candidate of the server handshake
 * (handshake.ts): the PSK premaster secret (RFC 4279 §2), the master secret
 * (RFC 5246 §8.1, or extended, RFC 7627 §4) and the AES-CCM-8 key block. An
 * unknown identity gets keys from a random stand-in PSK, computed the same
 * way, so that it cannot be told apart from a wrong key.
 */
import { ccmKeyBlock, concatBytes, extendedMasterSecret, masterSecret, pskPremaster, sha256, type CcmKeys } from './prf.js';

/**
 * Length of the random stand-in key of an unknown identity: 16 bytes, the
 * usual (and RFC 7925 §4.2 minimum recommended) PSK size, so that deriving its
 * keys costs what a real one costs.
 */
const DECOY_PSK_SIZE = 16;

/** One ClientKeyExchange, with what its Finished is checked against. */
export interface Candidate {
  readonly identity: string;
  /** False for an unknown identity, whose keys come from a random stand-in PSK (RFC 4279 §2). */
  readonly known: boolean;
  readonly message: Uint8Array;
  readonly master: Uint8Array;
  readonly keys: CcmKeys;
}

/** What deriving a candidate's keys needs from the handshake. */
export interface CandidateContext {
  readonly lookup: (identity: string) => Uint8Array | undefined;
  readonly random: (n: number) => Uint8Array;
  /** extended_master_secret was negotiated (RFC 7627). */
  readonly ems: boolean;
  /** The handshake messages before the ClientKeyExchange (hashed for the extended master secret). */
  readonly transcript: readonly Uint8Array[];
  readonly clientRandom: Uint8Array;
  readonly serverRandom: Uint8Array;
}

/** The candidate of the ClientKeyExchange `message` naming `identity`. */
export function pskCandidate(identity: string, message: Uint8Array, ctx: CandidateContext): Candidate {
  const found = ctx.lookup(identity);
  // RFC 4279 §2: answering unknown_psk_identity (or staying silent) tells a
  // prober which identities exist; continue with a random key instead, so the
  // Finished fails the way a wrong key's does.
  const psk = found ?? ctx.random(DECOY_PSK_SIZE);
  const pre = pskPremaster(psk);
  const master = ctx.ems
    ? extendedMasterSecret(pre, sha256(concatBytes(...ctx.transcript, message))) // RFC 7627 §3: hash up to ClientKeyExchange
    : masterSecret(pre, ctx.clientRandom, ctx.serverRandom);
  const keys = ccmKeyBlock(master, ctx.clientRandom, ctx.serverRandom);
  if (found === undefined) psk.fill(0);
  return { identity, known: found !== undefined, message, master, keys };
}
