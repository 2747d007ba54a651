/**
 * The one place where server-side errors become CoAP responses
 * (RFC 7252 §5.9), with a short diagnostic payload (§5.5.2).
 */
import { Code, OptionNumber } from '../codec/numbers.js';
import { uintOption } from '../codec/options.js';
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';

// Every error code a resource may throw, with the response it becomes: the one
// place where that mapping lives (RFC 7252 §5.9; 4.09 from RFC 8132 §3.3, for a
// state conflict such as a replayed report or a sequence number already taken).
const CODE_FOR: Partial<Record<CoapfwErrorCode, number>> = {
  NOT_FOUND: Code.NOT_FOUND,
  FORBIDDEN: Code.FORBIDDEN,
  BAD_OPTION: Code.BAD_OPTION,
  BAD_BLOCK_OPTION: Code.BAD_OPTION,
  INVALID_ARGUMENT: Code.BAD_REQUEST,
  BAD_URI: Code.BAD_REQUEST,
  TOO_LARGE: Code.REQUEST_ENTITY_TOO_LARGE,
  LIMIT_EXCEEDED: Code.SERVICE_UNAVAILABLE,
  CONTENT_CHANGED: Code.SERVICE_UNAVAILABLE,
  // The update service's state conflicts.
  REPORT_REPLAY: Code.CONFLICT,
  ALREADY_EXISTS: Code.CONFLICT,
  CONFLICT: Code.CONFLICT,
  BLOB_MISSING: Code.PRECONDITION_FAILED,
  // A body that fails to decode or verify is the client's fault: 4.00 with the reason.
  SUIT_MALFORMED: Code.BAD_REQUEST,
  SUIT_LIMIT: Code.BAD_REQUEST,
  SUIT_UNSUPPORTED: Code.BAD_REQUEST,
  DIGEST_MISMATCH: Code.BAD_REQUEST,
  SIGNATURE_INVALID: Code.BAD_REQUEST,
  NO_SIGNATURE: Code.BAD_REQUEST,
  UNTRUSTED_KEY: Code.BAD_REQUEST,
  KEY_INVALID: Code.BAD_REQUEST,
  KEY_REVOKED: Code.BAD_REQUEST,
  ROLLBACK: Code.BAD_REQUEST,
  VENDOR_MISMATCH: Code.BAD_REQUEST,
  CLASS_MISMATCH: Code.BAD_REQUEST,
  CONDITION_FAILED: Code.BAD_REQUEST,
  DOCUMENT_TYPE: Code.BAD_REQUEST,
};

const encoder = new TextEncoder();

/** A response with a diagnostic payload. */
export function errorResponse(code: number, diagnostic: string): ResponseSpec {
  return { code, payload: encoder.encode(diagnostic.slice(0, 120)) };
}

/**
 * Map anything a handler threw to a response; unknown errors become 5.00
 * without details. A {@link CoapfwError} says what to answer: its
 * `responseCode` when that is an error code (4.xx or 5.xx), else the code
 * its `code` maps to; its `maxAge` becomes Max-Age, how many seconds a
 * client should wait before asking again (RFC 7252 §5.9.3.4, §5.10.5).
 *
 * @example
 * throw new CoapfwError('LIMIT_EXCEEDED', 'busy', { maxAge: 30 }); // 5.03, Max-Age 30
 */
export function toResponse(e: unknown): ResponseSpec {
  if (!(e instanceof CoapfwError)) return { code: Code.INTERNAL_SERVER_ERROR };
  const code = isErrorCode(e.responseCode) ? e.responseCode : CODE_FOR[e.code];
  if (code === undefined) return { code: Code.INTERNAL_SERVER_ERROR };
  const response = errorResponse(code, e.message);
  const maxAge = e.maxAge;
  if (maxAge === undefined || !Number.isInteger(maxAge) || maxAge < 0 || maxAge > 0xffffffff) return response;
  return { ...response, options: [uintOption(OptionNumber.MAX_AGE, maxAge)] };
}

function isErrorCode(code: number | undefined): code is number {
  // Classes 4 and 5 (RFC 7252 §5.9.2, §5.9.3): a 2.xx is not an error to answer with.
  return code !== undefined && Number.isInteger(code) && code >> 5 >= 4 && code >> 5 <= 5;
}
