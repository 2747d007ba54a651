/** Byte helpers of the device layer. */

/** Byte equality (for digests and ETags: not secrets, so no constant-time compare). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
