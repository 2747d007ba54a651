/**
 * Which components a manifest touches, and which roles of a trust set
 * govern each: the input to per-component authorisation (RFC 9124 §4.3.4,
 * RFC 9019 §6.1).
 *
 * A component is identified by its SUIT component id (§8.4.5.1) and has the
 * vendor-id and class-id values (§8.4.8.3) that any override-parameters in
 * any sequence sets for it, try-each branches included; the device's own
 * table of components adds its values. The collection over-approximates on
 * purpose: every role matching any of those values must be satisfied, so an
 * extra value can only add a requirement, never remove one.
 *
 * One component is not governed by a role of its own: the delta scratch
 * component ['coapfw', 'delta'] (delta-manifest.ts). Its bytes reach an
 * image only through a copy into another component of the same manifest,
 * which is governed, and a device never installs it as such.
 */
import { CoapfwError } from '../errors.js';
import { DELTA_COMPONENT_ID } from './delta-manifest.js';
import type { TrustRole, TrustScope, TrustSet } from './trust-set.js';
import type { ComponentId, SuitCommand, SuitManifest } from './types.js';
import { bytesEqual, toHex } from './values.js';

/** A component of the device and its identity, as the device itself knows it. */
export interface DeviceComponent {
  readonly componentId: ComponentId;
  readonly vendorId?: Uint8Array;
  readonly classId?: Uint8Array;
}

/** A component a manifest touches, with every vendor and class id it may have. */
export interface TouchedComponent {
  readonly index: number;
  readonly componentId: ComponentId;
  readonly vendorIds: readonly Uint8Array[];
  readonly classIds: readonly Uint8Array[];
}

/** `[00 01]`: a component id for messages. */
export function componentLabel(id: ComponentId): string {
  return `[${id.map((p) => toHex(p)).join(' ')}]`;
}

function sameId(a: ComponentId, b: ComponentId): boolean {
  return a.length === b.length && a.every((p, i) => bytesEqual(p, b[i]!));
}

function addUnique(list: Uint8Array[], v: Uint8Array): void {
  if (!list.some((x) => bytesEqual(x, v))) list.push(v);
}

class Collector {
  readonly vendors: Uint8Array[][];
  readonly classes: Uint8Array[][];
  constructor(private readonly count: number) {
    this.vendors = Array.from({ length: count }, () => []);
    this.classes = Array.from({ length: count }, () => []);
  }

  /** Walk a sequence from the current component indices; returns the indices after it. */
  walk(seq: readonly SuitCommand[], current: readonly number[]): readonly number[] {
    let cur = current;
    for (const c of seq) cur = this.step(c, cur);
    return cur;
  }

  private step(c: SuitCommand, cur: readonly number[]): readonly number[] {
    switch (c.kind) {
      case 'set-component-index': {
        const all = Array.from({ length: this.count }, (_, i) => i);
        const list = c.index === true ? all : typeof c.index === 'number' ? [c.index] : c.index;
        // Out-of-range indices select nothing here; the planner rejects them.
        return list.filter((i) => i < this.count);
      }
      case 'override-parameters':
        for (const i of cur) {
          if (c.params.vendorId) addUnique(this.vendors[i]!, c.params.vendorId);
          if (c.params.classId) addUnique(this.classes[i]!, c.params.classId);
        }
        return cur;
      case 'try-each': {
        // Any branch may be the one taken: keep what every branch could leave selected.
        const ends = new Set(cur);
        for (const b of c.branches) for (const i of this.walk(b, cur)) ends.add(i);
        return [...ends];
      }
      case 'run-sequence':
        return this.walk(c.sequence, cur);
      case 'condition':
      case 'directive':
      case 'unknown':
        return cur;
    }
  }
}

/**
 * The components `m` touches (every declared component but the delta
 * scratch component), each with the vendor and class ids the manifest sets
 * for it, plus the device's when `device` is given. With `device`, a component the device does not have is
 * TRUST_NO_POLICY. A severed install or payload-fetch the envelope does not
 * carry is SUIT_MALFORMED: what it sets cannot be known.
 */
export function touchedComponents(m: SuitManifest, device?: readonly DeviceComponent[]): TouchedComponent[] {
  for (const name of ['payloadFetch', 'install'] as const) {
    if (m.severed[name] && !m[name]) {
      throw new CoapfwError('SUIT_MALFORMED', `trust: the ${name === 'install' ? 'install' : 'payload-fetch'} sequence is severed and not carried, so the components it touches are unknown`);
    }
  }
  const col = new Collector(m.components.length);
  // §6.4: the shared sequence runs before each sequence, from component 0.
  const start = col.walk(m.sharedSequence, [0]);
  for (const seq of [m.payloadFetch, m.install, m.validate, m.load, m.invoke]) if (seq) col.walk(seq, start);
  const touched = m.components.map((componentId, index) => ({ componentId, index })).filter((c) => !sameId(c.componentId, DELTA_COMPONENT_ID));
  return touched.map(({ componentId, index }) => {
    const vendorIds = [...col.vendors[index]!];
    const classIds = [...col.classes[index]!];
    if (device) {
      const own = device.find((d) => sameId(d.componentId, componentId));
      if (!own) throw new CoapfwError('TRUST_NO_POLICY', `trust: component ${componentLabel(componentId)} is not one of this device's components`);
      if (own.vendorId) addUnique(vendorIds, own.vendorId);
      if (own.classId) addUnique(classIds, own.classId);
    }
    return { index, componentId, vendorIds, classIds };
  });
}

/** Whether a role's scope covers a touched component (the trust pseudo-component never does). */
export function scopeMatches(scope: TrustScope, c: TouchedComponent): boolean {
  if (scope.kind === 'trust') return false;
  if (scope.kind === 'any-component') return true;
  if (scope.componentId && !sameId(scope.componentId, c.componentId)) return false;
  if (scope.vendorId && !c.vendorIds.some((v) => bytesEqual(v, scope.vendorId!))) return false;
  if (scope.classId && !c.classIds.some((v) => bytesEqual(v, scope.classId!))) return false;
  return true;
}

/** The roles that must all be satisfied for component `c`: TRUST_NO_POLICY when there is none. */
export function rolesFor(set: TrustSet, c: TouchedComponent): TrustRole[] {
  const roles = set.roles.filter((r) => scopeMatches(r.scope, c));
  if (roles.length === 0) {
    throw new CoapfwError('TRUST_NO_POLICY', `trust: no role of trust version ${set.version} governs component ${componentLabel(c.componentId)}, so nobody may sign for it`);
  }
  return roles;
}
