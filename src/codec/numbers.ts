/**
 * CoAP registry numbers: message types, codes, option numbers and
 * Content-Formats (RFC 7252 §3, §5.10, §12; RFC 7959; RFC 9175; RFC 9177).
 *
 * `as const` objects instead of `const enum`, which `isolatedModules` and
 * `verbatimModuleSyntax` forbid across files.
 */

/** Message types (RFC 7252 §3, the 2-bit T field). */
export const MessageType = { CON: 0, NON: 1, ACK: 2, RST: 3 } as const;
/** A message type value: 0 CON, 1 NON, 2 ACK, 3 RST. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Build a code byte from its class and detail ("2.05" is `code(2, 5)` = 0x45). */
const c = (cls: number, detail: number): number => (cls << 5) | detail;

/**
 * Method and response codes (RFC 7252 §12.1; RFC 7959 §2.9 for 2.31, 4.08, 4.13;
 * RFC 8132 for FETCH/PATCH/iPATCH, 4.09, 4.22; RFC 8516 for 4.29).
 * A code byte is `class << 5 | detail`.
 */
export const Code = {
  EMPTY: 0,
  GET: 1,
  POST: 2,
  PUT: 3,
  DELETE: 4,
  FETCH: 5,
  PATCH: 6,
  IPATCH: 7,
  CREATED: c(2, 1),
  DELETED: c(2, 2),
  VALID: c(2, 3),
  CHANGED: c(2, 4),
  CONTENT: c(2, 5),
  CONTINUE: c(2, 31),
  BAD_REQUEST: c(4, 0),
  UNAUTHORIZED: c(4, 1),
  BAD_OPTION: c(4, 2),
  FORBIDDEN: c(4, 3),
  NOT_FOUND: c(4, 4),
  METHOD_NOT_ALLOWED: c(4, 5),
  NOT_ACCEPTABLE: c(4, 6),
  REQUEST_ENTITY_INCOMPLETE: c(4, 8),
  CONFLICT: c(4, 9),
  PRECONDITION_FAILED: c(4, 12),
  REQUEST_ENTITY_TOO_LARGE: c(4, 13),
  UNSUPPORTED_CONTENT_FORMAT: c(4, 15),
  UNPROCESSABLE_ENTITY: c(4, 22),
  TOO_MANY_REQUESTS: c(4, 29),
  INTERNAL_SERVER_ERROR: c(5, 0),
  NOT_IMPLEMENTED: c(5, 1),
  BAD_GATEWAY: c(5, 2),
  SERVICE_UNAVAILABLE: c(5, 3),
  GATEWAY_TIMEOUT: c(5, 4),
  PROXYING_NOT_SUPPORTED: c(5, 5),
} as const;

/** "c.dd" notation of a code byte, e.g. `codeToString(0x45) === '2.05'`. */
export function codeToString(code: number): string {
  const detail = code & 0x1f;
  return `${(code >> 5) & 7}.${detail < 10 ? '0' : ''}${detail}`;
}

/** The class (0..7) of a code byte: 0 request/empty, 2 success, 4 client error, 5 server error. */
export function codeClass(code: number): number {
  return (code >> 5) & 7;
}

/** True for the Empty message code 0.00 (RFC 7252 §4.1). */
export function isEmpty(code: number): boolean {
  return code === 0;
}

/** True for request codes 0.01..0.31 (RFC 7252 §5.8). */
export function isRequest(code: number): boolean {
  return code >= 1 && code <= 31;
}

/** True for response codes, classes 2..5 (RFC 7252 §5.9; classes 1, 6, 7 are reserved). */
export function isResponse(code: number): boolean {
  return code >= 0x40 && code <= 0xbf;
}

/** Option numbers (RFC 7252 §12.2 and the CoAP Option Numbers registry). */
export const OptionNumber = {
  IF_MATCH: 1,
  URI_HOST: 3,
  ETAG: 4,
  IF_NONE_MATCH: 5,
  OBSERVE: 6, // RFC 7641
  URI_PORT: 7,
  LOCATION_PATH: 8,
  URI_PATH: 11,
  CONTENT_FORMAT: 12,
  MAX_AGE: 14,
  URI_QUERY: 15,
  ACCEPT: 17,
  Q_BLOCK1: 19, // RFC 9177
  LOCATION_QUERY: 20,
  BLOCK2: 23, // RFC 7959
  BLOCK1: 27, // RFC 7959
  SIZE2: 28, // RFC 7959
  Q_BLOCK2: 31, // RFC 9177
  PROXY_URI: 35,
  PROXY_SCHEME: 39,
  SIZE1: 60,
  ECHO: 252, // RFC 9175
  NO_RESPONSE: 258, // RFC 7967
  REQUEST_TAG: 292, // RFC 9175
} as const;

/**
 * RFC 7252 §5.4.6: odd option numbers are critical. An endpoint that does not
 * understand a critical option in a CON request answers 4.02 (Bad Option).
 */
export function isCritical(optionNumber: number): boolean {
  return (optionNumber & 1) === 1;
}

/** RFC 7252 §5.4.6: bit 1 set means the option is unsafe to forward. */
export function isUnsafe(optionNumber: number): boolean {
  return (optionNumber & 2) === 2;
}

/**
 * Content-Format numbers (CoAP Content-Formats registry, RFC 7252 §12.3).
 *
 * There is no registered CoAP Content-Format for SUIT envelopes
 * (application/suit-envelope+cose has a media type but no CoAP number), so
 * `SUIT_ENVELOPE` is an alias of application/cbor (60): the envelope is a
 * tagged CBOR item. Firmware images are application/octet-stream (42).
 */
export const ContentFormat = {
  TEXT_PLAIN: 0,
  COSE_SIGN1: 18, // application/cose; cose-type="cose-sign1" (RFC 9052)
  LINK_FORMAT: 40, // RFC 6690
  XML: 41,
  OCTET_STREAM: 42,
  EXI: 47,
  JSON: 50,
  CBOR: 60,
  CBOR_SEQ: 63, // RFC 8742
  MISSING_BLOCKS: 272, // application/missing-blocks+cbor-seq (RFC 9177 §12.3)
  /** Alias of CBOR (60); see the note above. */
  SUIT_ENVELOPE: 60,
  /** Alias of OCTET_STREAM (42). */
  FIRMWARE_IMAGE: 42,
} as const;

/** RFC 7252 §2.1 / §6.1: default ports. */
export const COAP_PORT = 5683;
/** RFC 7252 §6.2: default port for coaps. */
export const COAPS_PORT = 5684;
