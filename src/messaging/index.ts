/**
 * The CoAP message layer (RFC 7252 §4) as {@link CoapEndpoint}: one endpoint
 * on any `Transport` both serves requests and makes them (CON/NON/ACK/RST,
 * retransmission with exponential back-off, duplicate detection, tokens,
 * NSTART, separate responses), with every limit an option. Clock, timers and
 * randomness come from the `Runtime` you pass in; the wrappers here (Echo,
 * retry with back-off) compose around any requester.
 *
 * @example
 * import { CoapEndpoint } from 'coapfw/messaging';
 * import { UdpTransport, systemRuntime } from 'coapfw/transport';
 * import { Code, pathOptions } from 'coapfw/codec';
 * const ep = new CoapEndpoint(await UdpTransport.bind({ port: 0 }), { runtime: systemRuntime });
 * const res = await ep.request({ address: '127.0.0.1', port: 5683 }, { code: Code.GET, options: pathOptions('/.well-known/core') });
 */
export { CoapEndpoint, type CoapRequest, type EndpointOptions, type EndpointStats, type RequestHandler, type ResponseSpec } from './endpoint.js';
export { DEFAULT_PARAMS, exchangeLifetime, maxTransmitSpan, maxTransmitWait, resolveParams, type TransmissionParams } from './params.js';
export { withEcho } from './echo.js';
export { Observation, type ObservationOptions, type ObserveLoss } from './observation.js';
export { backoffDelay, retryAfterDelay, sleep, withRetry, type RetryPolicy } from './retry.js';
export type { RequestOptions, RequestSpec, Requester } from '../core/request.js';
export type { Runtime, TimerHandle } from '../core/runtime.js';
export { peerKey, type DatagramHandler, type Peer, type Transport } from '../core/transport.js';
