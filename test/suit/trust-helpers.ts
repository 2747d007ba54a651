/**
 * A board for the trust tests: a radio (component [01], vendor A) and an
 * application (component [00], vendor B), each vendor signing its own part,
 * and an integrator whose keys govern the trust pseudo-component (2 of 3).
 */
import { expect } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  createEnvelope,
  initialTrustState,
  privateKeyFromSecret,
  type SuitPrivateKey,
  type TrustRole,
  type TrustSet,
  type TrustState,
} from '../../src/suit/index.js';

/** A deterministic key per name, so failures replay. */
export function key(name: string, type: 'ed25519' | 'p256' = 'ed25519'): SuitPrivateKey {
  return privateKeyFromSecret(type, sha256(new TextEncoder().encode(`coapfw test key ${type} ${name}`)));
}

export const VENDOR_A = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
export const VENDOR_B = Uint8Array.from({ length: 16 }, (_, i) => 0xb0 + i);
export const CLASS_RADIO = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
export const CLASS_APP = Uint8Array.from({ length: 16 }, (_, i) => 0x20 + i);
export const RADIO = [Uint8Array.of(1)];
export const APP = [Uint8Array.of(0)];

export const K = {
  a1: key('vendor-a-1'),
  a2: key('vendor-a-2', 'p256'),
  b1: key('vendor-b-1'),
  b2: key('vendor-b-2'),
  t1: key('integrator-1'),
  t2: key('integrator-2', 'p256'),
  t3: key('integrator-3'),
  owner: key('owner'),
  owner2: key('owner-2'),
  stranger: key('stranger'),
  community: key('community'),
};

/** Anchors for the named keys of K. */
export function anchors(...names: (keyof typeof K)[]): TrustSet['anchors'] {
  return names.map((n) => ({ name: n, publicKey: K[n].publicKey }));
}

export const trustRoleOf = (signers: string[], threshold: number): TrustRole => ({ name: 'trust', scope: { kind: 'trust' }, signers, threshold });
export const radioRole = (signers: string[], threshold = 1): TrustRole => ({ name: 'radio', scope: { kind: 'component', componentId: RADIO }, signers, threshold });
export const appRole = (signers: string[], threshold = 1): TrustRole => ({ name: 'app', scope: { kind: 'component', vendorId: VENDOR_B }, signers, threshold });

/** Trust version 1 of the board. */
export function boardSet(version = 1): TrustSet {
  return {
    version,
    anchors: anchors('a1', 'b1', 't1', 't2', 't3'),
    roles: [trustRoleOf(['t1', 't2', 't3'], 2), radioRole(['a1']), appRole(['b1'])],
    source: 'coaps://fw.example.com/board',
  };
}

/** The provisioned state: board set v1 with the owner key. */
export function boardState(): TrustState {
  return initialTrustState(boardSet(), K.owner.publicKey);
}

/** A single-component envelope for the radio or the app, signed by `keys`. */
export function firmware(part: 'radio' | 'app', keys: SuitPrivateKey[], sequence = 10, vendorId?: Uint8Array): Uint8Array {
  const radio = part === 'radio';
  return createEnvelope(
    {
      sequence,
      vendorId: vendorId ?? (radio ? VENDOR_A : VENDOR_B),
      classId: radio ? CLASS_RADIO : CLASS_APP,
      uri: `/fw/sha256/${'ab'.repeat(32)}`,
      digest: new Uint8Array(32).fill(radio ? 1 : 2),
      size: 1000,
      componentId: radio ? RADIO : APP,
    },
    keys,
  );
}

/** The error code `f` throws (fails the test if it does not throw). */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code ?? `untyped: ${String(e)}`;
  }
  expect.unreachable('expected a typed error');
  return '';
}
