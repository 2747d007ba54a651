/**
 * coapfw public API. Named exports only.
 */
export { CoapfwError, isCoapfwError, type CoapfwErrorCode } from './errors.js';
export { peerKey, type Peer, type Transport, type DatagramHandler } from './transport/types.js';
