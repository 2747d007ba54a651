/**
 * No-Response (RFC 7967): a client tells the server which classes of
 * response it does not want, e.g. a sensor posting readings with NON that
 * never reads the 2.04s. The endpoint applies it to every response it sends,
 * so handlers need not know about it.
 */
import type { CoapMessage } from '../codec/message.js';
import { codeClass, OptionNumber } from '../codec/numbers.js';
import { getOption } from '../codec/options.js';

/**
 * True when `req` asks not to receive a response with `code`. RFC 7967 §2.1:
 * the option value is a bit mask, bit `class - 1` set meaning "not
 * interested in class `class`" (2 for 2.xx, 8 for 4.xx, 16 for 5.xx); 0 or
 * no option means every response is wanted. A value longer than its one
 * byte is an elective option with a bad length (RFC 7252 §5.4.3): ignored.
 */
export function noResponseSuppresses(req: CoapMessage, code: number): boolean {
  const raw = getOption(req, OptionNumber.NO_RESPONSE);
  if (raw === undefined || raw.length !== 1) return false;
  const cls = codeClass(code);
  return cls >= 1 && (raw[0]! & (1 << (cls - 1))) !== 0;
}
