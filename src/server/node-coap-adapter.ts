/**
 * Mount our resources (stateless Block2 file serving, `/.well-known/core`)
 * on an existing node-coap server (`coap.createServer()`, coap 1.x).
 *
 * Why an adapter is needed: node-coap's response object (`OutMessage`, an
 * internal subclass of its `OutgoingMessage`) rewrites Block2 itself. When
 * the request carries Block2 its `end(payload)` takes the payload as the
 * WHOLE representation, slices it, replaces Block2, sets a 2-byte XOR ETag
 * computed over everything, and caches the whole payload per token; handed
 * an already-sliced block of a resumed transfer it answers 4.02. So the
 * adapter answers the request's Block2 itself ({@link serveBlock2}: slice,
 * Block2 with M, ETag = SHA-256 prefix, Size2) and sends that one slice
 * through the base `OutgoingMessage.prototype.end`, which only encodes and
 * sends: node-coap's Block2 rewriting and its per-token Block2 cache are
 * never involved, and every block, from any start, is answered from the
 * request alone (RFC 7959 §2.4).
 *
 * What still comes from node-coap (not ours to change): piggybacked or
 * separate responses (after its `piggybackReplyMs`), its duplicate
 * detection (LRU by message ID and token), retransmission settings (process
 * global). Limits, stated precisely:
 * - node-coap converts some request option values in place before the
 *   listener runs (ETag to a string, Content-Format/Accept to names), so the
 *   adapter reconstructs only options whose bytes survive (opaque, uint,
 *   Uri-Path/Uri-Query); our resources do not read the others.
 * - A request with `Observe: 0` gets node-coap's ObserveWriteStream: the
 *   adapter then answers with one notification (node-coap adds Observe: 1)
 *   carrying the right block; files never change, so none follow.
 * - If another handler on the same node-coap server answers block-wise
 *   through node-coap's own `end()`, node-coap caches that payload by token
 *   and client; a later request from that client re-using the same token for
 *   one of our resources would be answered from that cache by node-coap
 *   without calling any listener. Clients use a fresh token per transfer.
 * - Relies on node-coap 1.x internals: the response's prototype chain
 *   contains a class named `OutgoingMessage` whose own `end` sends without
 *   block handling. If that is not found, {@link nodeCoapHandler} answers 5.00
 *   and reports NODE_COAP_UNSUPPORTED through `onError` instead of sending a
 *   wrong block.
 *
 * @example
 * import coap from 'coap';
 * const repo = await FileRepository.open('./firmware');
 * const ours = nodeCoapFileHandler(repo);
 * coap.createServer((req, res) => {
 *   if (ours(req, res)) return; // /files/..., /fw/sha256/..., /.well-known/core
 *   res.code = '4.04';
 *   res.end();
 * }).listen(5683);
 */
import type { Block2ServeOptions } from '../blockwise/serve.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, codeToString, MessageType, OptionNumber } from '../codec/numbers.js';
import { encodeUint, OPTION_DEFINITIONS } from '../codec/options.js';
import { EMPTY } from '../codec/bytes.js';
import { CoapfwError } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import { fileResources } from './file-server.js';
import type { FileRepository } from './files.js';
import { routeRequests, type Resolver } from './router.js';

/** The parts of node-coap's IncomingMessage the adapter reads. */
export interface NodeCoapRequest {
  /** Request code as node-coap reports it, e.g. `'0.01'`. */
  readonly code: string;
  /** Options by name (`'Uri-Path'`, `'Block2'`, or the number as a string when unknown). */
  readonly options?: ReadonlyArray<{ readonly name: string | number; readonly value: unknown }>;
  readonly payload?: Uint8Array;
  readonly rsinfo?: { readonly address: string; readonly port: number };
  readonly _packet?: { readonly messageId?: number; readonly token?: Uint8Array; readonly confirmable?: boolean };
}

/** The parts of node-coap's OutgoingMessage (or ObserveWriteStream) the adapter uses. */
export interface NodeCoapResponse {
  code?: string;
  statusCode?: string;
  setOption(name: string, value: Buffer | Buffer[]): unknown;
  end(payload?: Buffer): unknown;
  write?(payload: Buffer): unknown;
}

/** Options of {@link nodeCoapHandler}. */
export interface NodeCoapAdapterOptions {
  /** Told about a response that could not be sent correctly (the client got 5.00). */
  readonly onError?: (error: CoapfwError) => void;
}

/** A node-coap `'request'` listener part: returns true when it answered the request. */
export type NodeCoapListener = (req: NodeCoapRequest, res: NodeCoapResponse) => boolean;

/**
 * Option names as node-coap (coap-packet) spells them: ours, plus the ones
 * coap-packet names that our codec does not define, so that an unknown
 * critical option like OSCORE (9) still reaches the router and gets 4.02
 * (RFC 7252 §5.4.1) instead of being silently dropped.
 */
const NUMBER_BY_NAME: ReadonlyMap<string, number> = new Map([
  ...[...OPTION_DEFINITIONS].map(([n, d]): [string, number] => [d.name, n]),
  ['OSCORE', 9],
  ['Hop-Limit', 16],
  ['OCF-Accept-Content-Format-Version', 2049],
  ['OCF-Content-Format-Version', 2053],
]);
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * A listener answering every path `resolve` knows (others: returns false
 * and leaves the response alone, for the application's own routes).
 */
export function nodeCoapHandler(resolve: Resolver, options: NodeCoapAdapterOptions = {}): NodeCoapListener {
  const route = routeRequests(resolve);
  return (req, res) => {
    const message = toCoapMessage(req);
    const path = message.options.filter((o) => o.number === OptionNumber.URI_PATH).map((o) => utf8Decoder.decode(o.value));
    let known: boolean;
    try {
      known = resolve(path, message) !== undefined;
    } catch {
      known = false;
    }
    if (!known) return false;
    const peer = { address: req.rsinfo?.address ?? '', port: req.rsinfo?.port ?? 0 };
    // Errors about this request name the client and the path it asked for.
    const where = { peer, path: `/${path.join('/')}` };
    const report = options.onError && ((e: CoapfwError) => options.onError!(new CoapfwError(e.code, e.message, { cause: e.cause, ...where })));
    Promise.resolve(route({ message, peer }))
      .catch((): ResponseSpec => ({ code: Code.INTERNAL_SERVER_ERROR }))
      .then((spec) => sendNodeCoapResponse(res, spec ?? { code: Code.INTERNAL_SERVER_ERROR }, { onError: report }))
      .catch((e: unknown) => report?.(new CoapfwError('NODE_COAP_UNSUPPORTED', `node-coap adapter: sending the response failed: ${String(e)}`, { cause: e })));
    return true;
  };
}

/** {@link nodeCoapHandler} for a file repository: `/files/<path>`, `/fw/sha256/<hex>`, `/.well-known/core`, as `coapfw serve`. */
export function nodeCoapFileHandler(repo: FileRepository, options: Block2ServeOptions & NodeCoapAdapterOptions = {}): NodeCoapListener {
  return nodeCoapHandler(fileResources(repo, options), options);
}

/** Rebuild the request as our codec's message, keeping the options whose bytes node-coap left intact. */
export function toCoapMessage(req: NodeCoapRequest): CoapMessage {
  const options: CoapOption[] = [];
  for (const o of req.options ?? []) {
    const number = typeof o.name === 'number' ? o.name : (NUMBER_BY_NAME.get(o.name) ?? Number.parseInt(o.name, 10));
    if (!Number.isInteger(number)) continue;
    const value = optionBytes(number, o.value);
    if (value !== undefined) options.push({ number, value });
  }
  options.sort((a, b) => a.number - b.number);
  const [cls, detail] = req.code.split('.').map((s) => Number.parseInt(s, 10));
  return {
    type: req._packet?.confirmable === false ? MessageType.NON : MessageType.CON,
    code: ((cls ?? 0) << 5) | (detail ?? 0),
    messageId: req._packet?.messageId ?? 0,
    token: req._packet?.token ?? EMPTY,
    options,
    payload: req.payload ?? EMPTY,
  };
}

function optionBytes(number: number, value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  const format = OPTION_DEFINITIONS.get(number)?.format;
  if (typeof value === 'number' && format === 'uint') return encodeUint(value);
  // Uri-Path/Uri-Query survive as text; other converted strings (ETag, media type names) are lossy: dropped.
  if (typeof value === 'string' && (number === OptionNumber.URI_PATH || number === OptionNumber.URI_QUERY)) return utf8.encode(value);
  return undefined;
}

/** Write `spec` to the node-coap response, bypassing node-coap's own Block2 handling. */
export function sendNodeCoapResponse(res: NodeCoapResponse, spec: ResponseSpec, options: NodeCoapAdapterOptions = {}): void {
  const rawEnd = baseEnd(res);
  const observeStream = rawEnd === undefined && typeof res.write === 'function' && inChain(res, 'ObserveWriteStream');
  if (rawEnd === undefined && !observeStream) {
    options.onError?.(new CoapfwError('NODE_COAP_UNSUPPORTED', 'node-coap adapter: the response has no OutgoingMessage base; refusing to let node-coap rewrite Block2'));
    res.code = '5.00';
    res.statusCode = '5.00';
    res.end();
    return;
  }
  const code = codeToString(spec.code);
  res.code = code;
  res.statusCode = code;
  const byNumber = new Map<number, Buffer[]>();
  for (const o of spec.options ?? []) {
    const list = byNumber.get(o.number) ?? [];
    list.push(Buffer.from(o.value.buffer, o.value.byteOffset, o.value.byteLength));
    byNumber.set(o.number, list);
  }
  for (const [number, values] of byNumber) {
    const name = OPTION_DEFINITIONS.get(number)?.name ?? String(number);
    res.setOption(name, values.length === 1 ? values[0]! : values);
  }
  const payload = spec.payload && spec.payload.length > 0 ? Buffer.from(spec.payload.buffer, spec.payload.byteOffset, spec.payload.byteLength) : undefined;
  if (rawEnd !== undefined) {
    rawEnd.call(res, payload);
  } else {
    // ObserveWriteStream: one notification, then finish (it sends nothing more once something was written).
    if (payload !== undefined) res.write!(payload);
    else res.write!(Buffer.alloc(0));
    res.end();
  }
}

/** node-coap's base `OutgoingMessage.prototype.end` in the response's prototype chain. */
function baseEnd(res: object): ((this: unknown, payload?: Buffer) => unknown) | undefined {
  const p = inChain(res, 'OutgoingMessage');
  return p !== undefined && Object.hasOwn(p, 'end') ? (p as { end: (this: unknown, payload?: Buffer) => unknown }).end : undefined;
}

/** The prototype in `obj`'s chain whose constructor is named `name`. */
function inChain(obj: object, name: string): object | undefined {
  for (let p = Object.getPrototypeOf(obj) as object | null; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === name) return p;
  }
  return undefined;
}
