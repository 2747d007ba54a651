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
  | 'UNREACHABLE'
  | 'ADDRESS_IN_USE'
  | 'BAD_URI'
  | 'RESPONSE_CODE'
  // block-wise
  | 'ETAG_MISMATCH'
  | 'BLOCK_OUT_OF_ORDER'
  | 'BLOCK_MISMATCH'
  | 'TOO_LARGE'
  | 'BAD_QBLOCK_REQUEST'
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
  // trust set (rotation, revocation, owner transfer)
  | 'DOCUMENT_TYPE'
  | 'TRUST_ROLLBACK'
  | 'TRUST_VERSION_GAP'
  | 'TRUST_THRESHOLD'
  | 'TRUST_NO_POLICY'
  | 'KEY_NOT_AUTHORIZED'
  | 'KEY_REVOKED'
  | 'REVOCATION_ROLLBACK'
  | 'REVOCATION_CONFLICT'
  | 'OWNER_REQUIRED'
  | 'NOT_OWNER'
  | 'NO_OWNER'
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
  | 'TRUST_STORE_CORRUPT'
  // device trust (src/device/trust-*.ts)
  | 'TRUST_NOT_PROVISIONED'
  | 'REVOCATION_STALE'
  | 'SOURCE_MISMATCH'
  // dtls
  | 'DTLS_HANDSHAKE_FAILED'
  | 'DTLS_BAD_RECORD'
  | 'DTLS_ALERT'
  | 'DTLS_NO_SESSION'
  // flash ownership
  | 'FLASH_BUSY'
  // per-block authentication (src/suit/block-*.ts)
  | 'BLOCK_DIGEST_UNAVAILABLE'
  // differential updates (src/delta/)
  | 'DELTA_MALFORMED'
  | 'DELTA_TRUNCATED'
  | 'DELTA_RANGE'
  | 'DELTA_LIMIT'
  | 'DELTA_SOURCE_MISMATCH'
  // update service (store)
  | 'REPORT_REPLAY'
  | 'ALREADY_EXISTS'
  | 'CONFLICT'
  | 'DB_SCHEMA'
  | 'DRIVER_MISSING'
  | 'BLOB_MISSING'
  // operators (src/http/, the config file)
  | 'UNAUTHORIZED'
  | 'CONFIG_INVALID'
  // gateway (src/gateway/)
  | 'QUEUE_CORRUPT'
  | 'UPSTREAM'
  // generic
  | 'INVALID_ARGUMENT'
  | 'IO_ERROR';

/** Where an error came from on the network: a peer address. */
export interface ErrorPeer {
  readonly address: string;
  readonly port: number;
}

/** Data a program can act on, beside the stable `code`. Every field is optional. */
export interface CoapfwErrorDetails {
  readonly cause?: unknown;
  /** The CoAP response code that caused the error (e.g. 0x83 for 4.03), for RESPONSE_CODE. */
  readonly responseCode?: number;
  /** Seconds the server asked us to wait (Max-Age of a 5.03, RFC 7252 §5.9.3.4). */
  readonly maxAge?: number;
  /** The block number the error concerns (block-wise transfers, flash blocks). */
  readonly block?: number;
  /** The remote endpoint concerned. */
  readonly peer?: ErrorPeer;
  /** The file or URI concerned, for messages that name it. */
  readonly path?: string;
}

// A brand shared by every copy of this package loaded into one process (two
// installs in one tree): `instanceof CoapfwError` checks it, not the prototype
// chain, in the way undici's kUndiciError does.
const kCoapfwError: unique symbol = Symbol.for('coapfw.error') as never;

/** Base class of every error this library throws on purpose. */
export class CoapfwError extends Error {
  readonly code: CoapfwErrorCode;
  readonly responseCode: number | undefined;
  readonly maxAge: number | undefined;
  readonly block: number | undefined;
  readonly peer: ErrorPeer | undefined;
  readonly path: string | undefined;
  readonly [kCoapfwError] = true;

  constructor(code: CoapfwErrorCode, message: string, details?: CoapfwErrorDetails) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CoapfwError';
    this.code = code;
    this.responseCode = details?.responseCode;
    this.maxAge = details?.maxAge;
    this.block = details?.block;
    this.peer = details?.peer;
    this.path = details?.path;
  }

  /** Brand check, so an error from another copy of coapfw still matches. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== CoapfwError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [kCoapfwError]?: unknown })[kCoapfwError] === true;
  }
}

/** True when `e` is a CoapfwError (from any copy of the package), optionally with the given code. */
export function isCoapfwError(e: unknown, code?: CoapfwErrorCode): e is CoapfwError {
  return e instanceof CoapfwError && (code === undefined || e.code === code);
}
