/**
 * One error hierarchy for the whole stack. Every error carries a stable
 * `code` string that callers and tests match on; messages are for people.
 */

/** Stable error codes. Add new codes here, never reuse one for another meaning. */
export type CoapfwErrorCode =
  // codec
  | 'MALFORMED_MESSAGE'
  | 'BAD_OPTION'
  | 'BAD_BLOCK_OPTION'
  | 'BAD_LINK_FORMAT'
  // messaging / transport
  | 'TIMEOUT'
  | 'RESET'
  | 'ABORTED'
  | 'TRANSPORT_CLOSED'
  | 'BAD_URI'
  | 'RESPONSE_CODE'
  // block-wise
  | 'ETAG_MISMATCH'
  | 'BLOCK_OUT_OF_ORDER'
  | 'BLOCK_MISMATCH'
  | 'TOO_LARGE'
  // server
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'LIMIT_EXCEEDED'
  | 'NODE_COAP_UNSUPPORTED'
  | 'CONTENT_CHANGED'
  // suit
  | 'SUIT_MALFORMED'
  | 'SUIT_LIMIT'
  | 'SUIT_UNSUPPORTED'
  | 'DIGEST_MISMATCH'
  | 'SIGNATURE_INVALID'
  | 'NO_SIGNATURE'
  | 'UNTRUSTED_KEY'
  | 'ROLLBACK'
  | 'VENDOR_MISMATCH'
  | 'CLASS_MISMATCH'
  | 'CONDITION_FAILED'
  | 'KEY_INVALID'
  // flash / device
  | 'FLASH_NOT_ERASED'
  | 'FLASH_RANGE'
  | 'FLASH_ALIGNMENT'
  | 'POWER_CUT'
  | 'JOURNAL_CORRUPT'
  | 'IMAGE_TOO_LARGE'
  | 'UPDATE_FAILED'
  | 'BOOT_STATE'
  | 'NO_BOOTABLE_IMAGE'
  // dtls
  | 'DTLS_HANDSHAKE_FAILED'
  | 'DTLS_BAD_RECORD'
  | 'DTLS_ALERT'
  | 'DTLS_NO_SESSION'
  // generic
  | 'INVALID_ARGUMENT'
  | 'IO_ERROR';

/** Base class of every error this library throws on purpose. */
export class CoapfwError extends Error {
  readonly code: CoapfwErrorCode;

  constructor(code: CoapfwErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CoapfwError';
    this.code = code;
  }
}

/** True when `e` is a CoapfwError, optionally with the given code. */
export function isCoapfwError(e: unknown, code?: CoapfwErrorCode): e is CoapfwError {
  return e instanceof CoapfwError && (code === undefined || e.code === code);
}
