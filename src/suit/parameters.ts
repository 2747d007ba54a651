/**
 * How suit-directive-override-parameters combines with the parameters already
 * set (draft-ietf-suit-manifest-37 §8.4.10.3): every parameter it names
 * replaces the old value, every other one stays. Our custom (negative) keys
 * live together in `SuitParameters.other`, so they merge key by key too: an
 * override that sets coapfw-delta must not drop the coapfw-block-digests an
 * earlier override set.
 */
import type { SuitParameters } from './types.js';

/** `b` applied over `a`, key by key (`other` included). */
export function mergeParameters(a: SuitParameters | undefined, b: SuitParameters): SuitParameters {
  const other = a?.other || b.other ? { other: new Map([...(a?.other ?? []), ...(b.other ?? [])]) } : {};
  return { ...a, ...b, ...other };
}
