/**
 * Importing coapfw/suit must not change another library's module state: a
 * host process that uses @noble/ed25519 itself (with its own SHA-512, or
 * none, relying on the async API) keeps what it configured. The package is
 * imported by name, as a user's program would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';

const FIX = join(import.meta.dirname, '../fixtures/suit/eddsa');

describe('coapfw/suit and @noble/ed25519', () => {
  it('leaves ed.hashes.sha512 unset after import, signing and verifying', async () => {
    expect(ed.hashes.sha512).toBeUndefined();
    const suit = await import('coapfw/suit');
    const key = suit.parsePrivateKey(readFileSync(join(FIX, 'ed25519_seed_TEST_ONLY.hex'), 'utf8'));
    const trust = { anchors: [{ name: 'oem', publicKey: suit.parsePublicKey(readFileSync(join(FIX, 'ed25519_public.pem'), 'utf8')) }] };
    expect(suit.verifyEnvelope(readFileSync(join(FIX, 'ed25519-alg-19.suit')), { trust }).signedBy).toEqual([0]);
    const env = suit.createEnvelope({ sequence: 1, vendorId: new Uint8Array(16), classId: new Uint8Array(16), uri: '/fw/x', digest: new Uint8Array(32), size: 1 }, [key]);
    expect(suit.verifyEnvelope(env, { trust }).sequenceNumber).toBe(1n);
    expect(ed.hashes.sha512).toBeUndefined();
    // The host's own use of the library is unchanged: its sync API still asks for a hash.
    expect(() => ed.getPublicKey(new Uint8Array(32))).toThrow(/sha512/i);
  });
});
