/**
 * The zero-length byte array used for empty tokens, payloads and option
 * values. Shared: a zero-length view has no element anyone could change.
 */
export const EMPTY: Uint8Array = new Uint8Array(0);
