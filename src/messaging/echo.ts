/**
 * Client side of RFC 9175 Echo: a server that will not yet send a large
 * response to an unverified address answers 4.01 with an Echo option; the
 * client repeats the request with that Echo value (§2.3). A wrapper around
 * any requester, so the fetcher and the device client get it for free.
 */
import type { CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { getOption } from '../codec/options.js';
import type { Requester } from '../core/request.js';

/**
 * Wrap `request` so that a 4.01 carrying an Echo option is answered by
 * repeating the request once with that Echo value.
 */
export function withEcho(request: Requester): Requester {
  return async (spec, options) => {
    const res = await request(spec, options);
    if (res.code !== Code.UNAUTHORIZED) return res;
    const echo = getOption(res, OptionNumber.ECHO);
    if (echo === undefined) return res;
    const opts: CoapOption[] = [...(spec.options ?? []).filter((o) => o.number !== OptionNumber.ECHO), { number: OptionNumber.ECHO, value: echo }];
    return request({ ...spec, options: opts }, options);
  };
}
