/**
 * The zero-length byte array used for empty tokens, payloads and option
 * values. Shared: a zero-length view has no element anyone could change.
 */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** Slab size: small enough that one long-lived view pins little, large enough to hold ~15 full CoAP datagrams. */
const SLAB_BYTES = 16 * 1024;
/** Larger requests get their own allocation. */
const MAX_SLAB_ALLOC = 2048;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/**
 * A zero-filled byte array of `n` bytes for a datagram or its copy. Small
 * ones are views into a shared slab, as Node's Buffer pool does: a fresh
 * off-heap ArrayBuffer per datagram costs about a microsecond and drives the
 * garbage collector, a view costs a tenth of that. Each region is handed out
 * once, so it starts zeroed and is never shared with another caller; views
 * honour `byteOffset` like any subarray (never pass `.buffer` on whole).
 */
export function allocBytes(n: number): Uint8Array {
  if (n > MAX_SLAB_ALLOC) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed = (slabUsed + n + 7) & ~7; // keep views 8-byte aligned
  return out;
}
