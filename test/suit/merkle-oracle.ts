import { sha256 } from '@noble/hashes/sha2.js';
import { nodeHash } from '../../src/suit/block-digests.js';

/** RFC 9162 §2.1.1 Merkle Tree Hash, written out recursively as the RFC states it: the test oracle. */
export function mth(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
