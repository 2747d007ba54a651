/**
 * The CoAP codec (RFC 7252 §3): strict message encode/decode, the option
 * registry and helpers, Block option values (RFC 7959 §2.2), coap:// URIs
 * (RFC 7252 §6), link format (RFC 6690). Pure: no I/O, no timers.
 *
 * @example
 * import { Code, MessageType, decodeMessage, encodeMessage, pathOptions } from 'coapfw/codec';
 * const bytes = encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 1, token: new Uint8Array([7]), options: pathOptions('/fw/x'), payload: new Uint8Array() });
 * decodeMessage(bytes).code === Code.GET; // true; malformed input throws MALFORMED_MESSAGE
 */
export { decodeMessage, encodeMessage, peekHeader, MAX_OPTION_VALUE_LENGTH, MAX_TOKEN_LENGTH, type CoapHeader, type CoapMessage, type CoapOption } from './message.js';
export {
  Code,
  ContentFormat,
  MessageType,
  OptionNumber,
  COAP_PORT,
  COAPS_PORT,
  codeClass,
  codeToString,
  isCritical,
  isEmpty,
  isRequest,
  isResponse,
  isUnsafe,
} from './numbers.js';
export {
  OPTION_DEFINITIONS,
  KNOWN_OPTIONS,
  decodeUint,
  encodeUint,
  getOption,
  getOptions,
  hasOption,
  pathOptions,
  queryOptions,
  stringOption,
  uintOption,
  unknownCriticalOptions,
  uriPath,
  uriQuery,
  validateOptions,
  type OptionDefinition,
  type OptionFormat,
} from './options.js';
export { MAX_BLOCK_NUM, MAX_SZX, blockAt, blockOffset, blockSize, decodeBlock, encodeBlock, szxForSize, type BlockValue } from './block.js';
export { formatCoapUri, parseCoapUri, uriOptions, type CoapUri } from './uri.js';
export { filterLinks, formatLinks, parseLinks, type Link } from './link-format.js';
export { describeMessage } from './describe.js';
