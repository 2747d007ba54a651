/**
 * RFC 9175 §2.4 for the Q-Block2 client: a server guarding against
 * amplification answers 4.01 with an Echo value, and the client repeats that
 * request once with it. Responses come back by token, so the client
 * remembers its recent requests by token (bounded) to know what to repeat.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { getOption } from '../codec/options.js';
import type { RequestSpec } from '../core/request.js';

/** Requests remembered for repeating with an Echo value. */
const REMEMBERED_REQUESTS = 128;

/** The recent requests of one client, by token, for repeating with an Echo value. */
export class EchoRepeater {
  private readonly sent = new Map<string, RequestSpec>();

  /** `spec` went out with `token`; the oldest remembered request is forgotten past the bound. */
  remember(token: Uint8Array, spec: RequestSpec): void {
    this.sent.set(bytesToHex(token), spec);
    if (this.sent.size > REMEMBERED_REQUESTS) this.sent.delete(this.sent.keys().next().value!);
  }

  /**
   * The request to send again when `msg` is a 4.01 with an Echo value
   * answering a request we remember that carried none yet (repeated once
   * only); undefined otherwise.
   */
  repeatFor(msg: CoapMessage): RequestSpec | undefined {
    const echo = getOption(msg, OptionNumber.ECHO);
    const spec = this.sent.get(bytesToHex(msg.token));
    if (msg.code !== Code.UNAUTHORIZED || echo === undefined || spec === undefined) return undefined;
    if ((spec.options ?? []).some((opt) => opt.number === OptionNumber.ECHO)) return undefined;
    return { ...spec, options: [...(spec.options ?? []), { number: OptionNumber.ECHO, value: echo }] };
  }
}
