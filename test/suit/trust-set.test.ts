import { describe, expect, test } from 'vitest';
import { p256 } from '@noble/curves/nist.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Decoder } from 'cbor-x';
import { encodeCbor } from '../../src/suit/cbor.js';
import { encodeCoseKey } from '../../src/suit/keys.js';
import {
  checkTrustSet,
  checkTrustState,
  decodeTrustState,
  encodeTrustState,
  initialTrustState,
  keyThumbprint,
  publicKeyFromBytes,
  type TrustSet,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, appRole, boardSet, boardState, codeOf, radioRole, trustRoleOf } from './trust-helpers.js';

describe('keyThumbprint (RFC 9679)', () => {
  test('the RFC 9679 §6 example key gives the RFC thumbprint', () => {
    const x = '65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d';
    const y = '1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c';
    const key = publicKeyFromBytes('p256', hexToBytes(`04${x}${y}`));
    expect(bytesToHex(keyThumbprint(key))).toBe('496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec');
  });
  test('the same for a compressed P-256 point and without regard to the kid', () => {
    const full = K.a2.publicKey;
    const compressed = publicKeyFromBytes('p256', p256.Point.fromBytes(full.bytes).toBytes(true), Uint8Array.of(7));
    expect(keyThumbprint(compressed)).toEqual(keyThumbprint(full));
    expect(keyThumbprint(K.a1.publicKey)).not.toEqual(keyThumbprint(K.b1.publicKey));
  });
});

describe('checkTrustSet', () => {
  const ok = boardSet();
  const bad: [string, TrustSet, RegExp][] = [
    ['negative version', { ...ok, version: -1 }, /version/],
    ['two anchors with one name', { ...ok, anchors: [...ok.anchors, { name: 'a1', publicKey: K.a2.publicKey }] }, /two anchors are named 'a1'/],
    ['one key under two names', { ...ok, anchors: [...ok.anchors, { name: 'again', publicKey: K.a1.publicKey }] }, /same key/],
    ['an empty name', { ...ok, anchors: [{ name: '', publicKey: K.a1.publicKey }], roles: [] }, /non-empty/],
    ['a long name', { ...ok, anchors: [{ name: 'x'.repeat(25), publicKey: K.a1.publicKey }], roles: [] }, /exceeds 24 bytes/],
    ['an invalid key', { ...ok, anchors: [{ name: 'k', publicKey: { type: 'ed25519', bytes: new Uint8Array(31) } }], roles: [] }, /anchor 'k'/],
    ['a signer that is no anchor', { ...ok, roles: [radioRole(['nobody'])] }, /no anchor named 'nobody'/],
    ['a signer listed twice', { ...ok, roles: [radioRole(['a1', 'a1'])] }, /twice/],
    ['threshold 0', { ...ok, roles: [radioRole(['a1'], 0)] }, /threshold must be 1..1/],
    ['threshold above n', { ...ok, roles: [appRole(['b1'], 2)] }, /threshold must be 1..1/],
    ['no signers', { ...ok, roles: [radioRole([])] }, /at least one signer/],
    ['two roles with one name', { ...ok, roles: [radioRole(['a1']), radioRole(['a1'])] }, /two roles are named/],
    ['two trust roles', { ...ok, roles: [trustRoleOf(['t1'], 1), { ...trustRoleOf(['t2'], 1), name: 'trust2' }] }, /at most one role/],
    ['an empty component scope', { ...ok, roles: [{ name: 'r', scope: { kind: 'component' }, signers: ['a1'], threshold: 1 }] }, /needs a component id/],
    ['a long vendor id', { ...ok, roles: [{ name: 'r', scope: { kind: 'component', vendorId: new Uint8Array(33) }, signers: ['a1'], threshold: 1 }] }, /vendor id/],
    ['an unknown scope', { ...ok, roles: [{ name: 'r', scope: { kind: 'all' } as never, signers: ['a1'], threshold: 1 }] }, /scope kind/],
    ['an http source', { ...ok, source: 'http://fw.example.com/' }, /scheme must be coap or coaps/],
    ['too many anchors', { ...ok, anchors: Array.from({ length: 13 }, (_, i) => ({ name: `k${i}`, publicKey: K.a1.publicKey })), roles: [] }, /at most 12 anchors/],
  ];
  test.each(bad)('refuses %s with a labelled INVALID_ARGUMENT', (_n, set, msg) => {
    expect(() => checkTrustSet(set)).toThrow(msg);
    expect(codeOf(() => checkTrustSet(set))).toBe('INVALID_ARGUMENT');
  });
  test('accepts the board, a set without roles, and limits passed as options', () => {
    expect(() => checkTrustSet(ok)).not.toThrow();
    expect(() => checkTrustSet({ version: 0, anchors: [], roles: [] })).not.toThrow();
    expect(codeOf(() => checkTrustSet(ok, { maxRoles: 2 }))).toBe('INVALID_ARGUMENT');
  });
  test('checks the revocation state and the owner key', () => {
    const s = boardState();
    expect(codeOf(() => checkTrustState({ ...s, revocation: { sequence: 0, revoked: [new Uint8Array(32)] } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkTrustState({ ...s, revocation: { sequence: 2, revoked: [] } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkTrustState({ ...s, revocation: { sequence: 2, digest: new Uint8Array(32), revoked: [new Uint8Array(31)] } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkTrustState({ ...s, owner: { type: 'p256', bytes: new Uint8Array(33) } }))).toBe('INVALID_ARGUMENT');
  });
});

describe('trust state encoding (the trust store record)', () => {
  test('round-trips a full state, P-256 and Ed25519 keys, owner, revocation', () => {
    const s: TrustState = {
      ...boardSet(7),
      anchors: [...boardSet().anchors, ...anchors('a2')],
      roles: [...boardSet().roles.slice(0, 2), { name: 'app', scope: { kind: 'component', componentId: [Uint8Array.of(0), new Uint8Array(0)], vendorId: Uint8Array.of(1), classId: Uint8Array.of(2) }, signers: ['b1', 'a2'], threshold: 2 }, { name: 'any', scope: { kind: 'any-component' }, signers: ['a1'], threshold: 1 }],
      owner: K.owner.publicKey,
      revocation: { sequence: 12, digest: new Uint8Array(32).fill(3), revoked: [keyThumbprint(K.stranger.publicKey)] },
    };
    const bytes = encodeTrustState(s);
    expect(decodeTrustState(bytes)).toEqual(s);
    expect(bytesToHex(encodeTrustState(decodeTrustState(bytes)))).toBe(bytesToHex(bytes));
    const plain = initialTrustState({ version: 0, anchors: [], roles: [] });
    expect(decodeTrustState(encodeTrustState(plain))).toEqual(plain);
  });

  test('refuses what it cannot read: unknown members, another format, a private key, invalid content', () => {
    const good = encodeTrustState(boardState());
    const m = new Map<number, unknown>(decodeCbor(good));
    expect(codeOf(() => decodeTrustState(encodeCbor(new Map([...m, [7, 1]]))))).toBe('SUIT_UNSUPPORTED');
    expect(codeOf(() => decodeTrustState(encodeCbor(new Map([...m, [0, 2]]))))).toBe('SUIT_UNSUPPORTED');
    const withSecret = new Map([...m, [5, Buffer.from(encodeCoseKey(K.owner))]]);
    expect(codeOf(() => decodeTrustState(encodeCbor(withSecret)))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => decodeTrustState(encodeCbor(new Map([...m, [1, -1]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => decodeTrustState(good.subarray(0, good.length - 3)))).toBe('SUIT_MALFORMED');
  });
});

function decodeCbor(b: Uint8Array): Map<number, unknown> {
  return new Decoder({ mapsAsObjects: false, useRecords: false }).decode(b) as Map<number, unknown>;
}
