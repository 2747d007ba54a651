/**
 * The conditions the planner evaluates against what the device says about
 * itself (draft-ietf-suit-manifest-37 §8.4.9): identities, the component
 * slot, the image already installed, and whether it applies coapfw deltas.
 * A value the device does not give is "not evaluated" (listed as
 * unchecked), never "matches".
 */
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import { COAPFW_PARAM } from './constants.js';
import { decodeDeltaParam, type DeltaParam } from './delta-manifest.js';
import type { DeviceIdentity, ImageCheck } from './plan-types.js';
import type { ComponentId, SuitParameters } from './types.js';
import { bytesEqual } from './values.js';

/** The names of the conditions evaluated and not evaluated so far (the planner's, rolled back by try-each). */
export interface ConditionLedger {
  readonly checked: Set<string>;
  readonly unchecked: Set<string>;
}

/** An identity condition (vendor, class, device: §8.4.9.1, §8.4.9.3). */
export function checkIdentity(seen: ConditionLedger, name: string, want: Uint8Array | undefined, have: Uint8Array | undefined, code: CoapfwErrorCode): void {
  if (want === undefined) throw new CoapfwError('CONDITION_FAILED', `condition-${name}: parameter not set`);
  if (have === undefined) {
    seen.unchecked.add(name);
    return;
  }
  seen.checked.add(name);
  if (!bytesEqual(want, have)) throw new CoapfwError(code, `condition-${name}: manifest is for a different ${name.replace('-identifier', '')}`);
}

/** condition-component-slot against the slot the device will write. */
export function checkSlot(seen: ConditionLedger, device: DeviceIdentity, want: number | undefined, id: ComponentId, i: number): void {
  if (want === undefined) throw new CoapfwError('CONDITION_FAILED', 'condition-component-slot: no slot parameter set');
  const ds = device.componentSlot;
  const have = typeof ds === 'function' ? ds(id, i) : ds;
  if (have === undefined) {
    seen.unchecked.add('component-slot');
    return;
  }
  seen.checked.add('component-slot');
  if (have !== want) throw new CoapfwError('CONDITION_FAILED', `condition-component-slot: manifest slot ${want}, device slot ${have}`);
}

/**
 * An image-match on the image the device holds (nothing fetched into the
 * component yet): true when evaluated and matching, CONDITION_FAILED when
 * evaluated and not; false when the device does not say what it holds.
 */
export function installedMatch(seen: ConditionLedger, device: DeviceIdentity, id: ComponentId, i: number, check: ImageCheck): boolean {
  const have = device.installed?.(id, i);
  if (have === undefined) {
    seen.unchecked.add('image-match');
    return false;
  }
  seen.checked.add('image-match');
  const want = check.digest!;
  const same = have !== null && have.digest.alg === want.alg && bytesEqual(have.digest.bytes, want.bytes) && (check.size === undefined || check.size === have.size);
  if (!same) throw new CoapfwError('CONDITION_FAILED', `condition-image-match: component ${i} ${have === null ? 'holds no image' : 'holds another image than the manifest names'}`);
  return true;
}

/** The coapfw-delta of a copy, or undefined; a device that cannot apply it fails the step softly. */
export function deltaOf(device: DeviceIdentity, p: SuitParameters, i: number): DeltaParam | undefined {
  const raw = p.other?.get(COAPFW_PARAM.delta);
  if (raw === undefined) return undefined;
  if (device.applyDeltas === false) throw new CoapfwError('CONDITION_FAILED', `directive-copy: component ${i} is a coapfw delta and this device does not apply deltas`);
  try {
    return decodeDeltaParam(raw);
  } catch (e) {
    // A format this processor does not know is a delta it cannot apply: take the next alternative.
    if (e instanceof CoapfwError && e.code === 'SUIT_UNSUPPORTED') throw new CoapfwError('CONDITION_FAILED', e.message, { cause: e });
    throw e;
  }
}
