import { describe, expect, test } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import {
  encodeCoseKey,
  parsePrivateKey,
  parsePublicKey,
  privateKeyToPem,
  publicKeyToPem,
} from '../../src/suit/index.js';
import { fixtureText, hex } from './helpers.js';

const code = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? 'NOT_TYPED';
  }
};

describe('key parsing', () => {
  test('vector files: Ed25519 hex and PEM public keys agree, seed derives the same key', () => {
    const fromHex = parsePublicKey(fixtureText('eddsa/ed25519_public.hex'));
    const fromPem = parsePublicKey(fixtureText('eddsa/ed25519_public.pem'));
    const seed = parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex'));
    expect(fromHex.type).toBe('ed25519');
    expect(hex(fromPem.bytes)).toBe(hex(fromHex.bytes));
    expect(hex(seed.publicKey.bytes)).toBe('e03e7226fd6e374896fb731211de237c3a27721e94e7b05e15dd8041f84cd0fb');
  });

  test('WG P-256 PEM pair', () => {
    const pub = parsePublicKey(fixtureText('wg/public_key.pem'));
    const priv = parsePrivateKey(fixtureText('wg/private_key.pem'));
    expect(pub.type).toBe('p256');
    expect(hex(priv.publicKey.bytes)).toBe(hex(pub.bytes));
  });

  test('OpenSSL-format PEM (PKCS#8 / SPKI) round trip for Ed25519', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const priv = parsePrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const pub = parsePublicKey(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect(hex(priv.publicKey.bytes)).toBe(hex(pub.bytes));
    expect(privateKeyToPem(priv)).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(publicKeyToPem(pub)).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
  });

  test('P-256 SEC1 "EC PRIVATE KEY" PEM', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const priv = parsePrivateKey(privateKey.export({ type: 'sec1', format: 'pem' }) as string);
    const pub = parsePublicKey(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect(hex(priv.publicKey.bytes)).toBe(hex(pub.bytes));
    expect(publicKeyToPem(pub)).toBe(publicKey.export({ type: 'spki', format: 'pem' }));
  });

  test('COSE_Key round trip, private and public, with kid', () => {
    const priv = { ...parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex')), kid: new Uint8Array([1, 2]) };
    const back = parsePrivateKey(encodeCoseKey(priv));
    expect(hex(back.secret)).toBe(hex(priv.secret));
    expect(hex(back.kid!)).toBe('0102');
    const pub = parsePublicKey(encodeCoseKey(priv.publicKey));
    expect(hex(pub.bytes)).toBe(hex(priv.publicKey.bytes));
    const ec = parsePublicKey(fixtureText('wg/public_key.pem'));
    expect(hex(parsePublicKey(encodeCoseKey(ec)).bytes)).toBe(hex(ec.bytes));
  });

  test('garbage is KEY_INVALID', () => {
    expect(code(() => parsePublicKey('hello'))).toBe('KEY_INVALID');
    expect(code(() => parsePublicKey('abcd'))).toBe('KEY_INVALID');
    expect(code(() => parsePublicKey(new Uint8Array([0xff, 0x00, 0x01])))).toBe('KEY_INVALID');
    expect(code(() => parsePrivateKey(fixtureText('wg/public_key.pem')))).toBe('KEY_INVALID');
    expect(code(() => parsePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'))).toBe('KEY_INVALID');
    expect(code(() => parsePublicKey('00'.repeat(65)))).toBe('KEY_INVALID');
  });
});
