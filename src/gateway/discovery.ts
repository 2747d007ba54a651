/**
 * Answering multicast discovery (RFC 7252 §8.2, RFC 6690 §4.1): a device on
 * the link asks the All-CoAP-Nodes group `GET /.well-known/core?rt=firmware`
 * and every gateway answers with the links of its update service.
 *
 * The multicast rules: only Non-confirmable requests (§8.1; the endpoint
 * never acknowledges or resets one), only `GET /.well-known/core`, and no
 * error responses and no empty result (§8.2, RFC 6690 §4.1: a filter that
 * matches nothing, a 4.xx, a rate limit's 4.29 all get silence). Each answer
 * is sent at a random time within the leisure period (§8.2: Leisure =
 * S * G / R; with a few gateways of ~100-byte answers on a slow link that is
 * well under a second, so 1 s by default), as a unicast NON.
 */
import type { Runtime } from '../core/runtime.js';
import { Code, MessageType } from '../codec/numbers.js';
import { uriPath } from '../codec/options.js';
import type { RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
import type { Resource } from '../server/router.js';

/** Options of {@link discoveryHandler}. */
export interface DiscoveryOptions {
  readonly runtime: Runtime;
  /** Longest random delay before an answer (§8.2). Default 1000 ms. */
  readonly leisureMs?: number;
  /** Told about every answer sent and every request left unanswered. */
  readonly onRequest?: (answered: boolean, why: string) => void;
}

/** The handler of the multicast endpoint, over the gateway's discovery links resource. */
export function discoveryHandler(wellKnown: Resource, options: DiscoveryOptions): RequestHandler {
  const leisure = options.leisureMs ?? 1000;
  const silent = (why: string): undefined => {
    options.onRequest?.(false, why);
    return undefined;
  };
  return async (req) => {
    const msg = req.message;
    if (msg.type !== MessageType.NON) return silent('confirmable request by multicast');
    let path: string[];
    try {
      path = uriPath(msg);
    } catch {
      return silent('bad Uri-Path');
    }
    if (msg.code !== Code.GET || path.length !== 2 || path[0] !== '.well-known' || path[1] !== 'core') return silent('not GET /.well-known/core');
    let res: ResponseSpec | undefined;
    try {
      res = await wellKnown.handle(req);
    } catch {
      return silent('error');
    }
    if (res === undefined || res.code !== Code.CONTENT || (res.payload?.length ?? 0) === 0) return silent('no matching links, or an error');
    await new Promise<void>((r) => options.runtime.setTimer(options.runtime.random() * leisure, r));
    options.onRequest?.(true, 'answered');
    return res;
  };
}
