/**
 * coapfw: CoAP block-wise firmware updates. The root export is what every
 * part shares, the error type and the version; everything else lives in a
 * subpath, each a small surface for one job:
 *
 * | import | for |
 * |---|---|
 * | `coapfw/codec` | CoAP messages, options, Block values, URIs, link format |
 * | `coapfw/suit` | SUIT envelopes: decode, verify, plan, create, sign |
 * | `coapfw/delta` | differential updates: make and apply CFD1 deltas |
 * | `coapfw/server` | the file server, embeddable with your own resources |
 * | `coapfw/client` | open a client, fetch block-wise, download with resume |
 * | `coapfw/device` | the device's update client and boot model |
 * | `coapfw/flash` | flash backends, layout, the resume journal |
 * | `coapfw/messaging` | the CoAP endpoint (RFC 7252 §4), retry and Echo wrappers |
 * | `coapfw/transport` | UDP and DTLS 1.2 PSK transports |
 * | `coapfw/node-coap` | mount our resources on a node-coap server |
 * | `coapfw/testing` | fake runtime, in-memory network, lossy transport, flash with power cuts |
 *
 * @example
 * import { isCoapfwError } from 'coapfw';
 * try { await downloadToFile(client, uri, 'fw.bin'); }
 * catch (e) { if (isCoapfwError(e, 'TIMEOUT')) console.error(`no answer from ${e.peer?.address}`); }
 */
export { CoapfwError, isCoapfwError, type CoapfwErrorCode, type CoapfwErrorDetails, type ErrorPeer } from './errors.js';
export { VERSION } from './version.js';
