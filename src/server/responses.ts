/**
 * The one place where server-side errors become CoAP responses
 * (RFC 7252 §5.9), with a short diagnostic payload (§5.5.2).
 */
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';

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
};

const encoder = new TextEncoder();

/** A response with a diagnostic payload. */
export function errorResponse(code: number, diagnostic: string): ResponseSpec {
  return { code, payload: encoder.encode(diagnostic.slice(0, 120)) };
}

/**
 * Map anything a handler threw to a response; unknown errors become 5.00
 * without details. An error with `maxAge` (a 5.03 "try again in N seconds",
 * RFC 7252 §5.9.3.4) carries it as the Max-Age option.
 */
export function toResponse(e: unknown): ResponseSpec {
  if (e instanceof CoapfwError) {
    const code = CODE_FOR[e.code];
    if (code === undefined) return { code: Code.INTERNAL_SERVER_ERROR };
    const res = errorResponse(code, e.message);
    return e.maxAge === undefined ? res : { ...res, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(e.maxAge) }] };
  }
  return { code: Code.INTERNAL_SERVER_ERROR };
}
