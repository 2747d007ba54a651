import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CookieJar } from '../../src/transport/dtls/cookie.js';
import { DecodeError, parseClientHello, parseFragments, Reassembler } from '../../src/transport/dtls/messages.js';
import { ccmKeyBlock, masterSecret, prfSha256, pskPremaster } from '../../src/transport/dtls/prf.js';
import { Ccm8Cipher, ContentType, ReplayWindow, encodeRecord, parseRecords } from '../../src/transport/dtls/record.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('TLS 1.2 PRF (RFC 5246 §5)', () => {
  it('matches the P_SHA256 test vector (also `openssl kdf ... TLS1-PRF`)', () => {
    const out = prfSha256(hex('9bbe436ba940f017b17652849a71db35'), 'test label', hex('a0ba9f936cda311827a6f796ffd5198c'), 100);
    expect(toHex(out)).toBe(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab' +
        '4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66',
    );
  });

  it('builds the RFC 4279 §2 PSK pre-master secret', () => {
    expect(toHex(pskPremaster(hex('aabbcc')))).toBe('0003000000' + '0003aabbcc');
  });

  it('derives 48-byte master secrets and a 40-byte CCM_8 key block', () => {
    const m = masterSecret(pskPremaster(hex('00112233')), new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    expect(m.length).toBe(48);
    const k = ccmKeyBlock(m, new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    expect([k.clientKey.length, k.serverKey.length, k.clientSalt.length, k.serverSalt.length]).toEqual([16, 16, 4, 4]);
    expect(toHex(k.clientKey)).not.toBe(toHex(k.serverKey));
  });
});

describe('record layer (RFC 6347 §4.1)', () => {
  const key = hex('000102030405060708090a0b0c0d0e0f');
  const salt = hex('a0a1a2a3');

  it('encodes and parses several records in one datagram', () => {
    const d = Buffer.concat([encodeRecord(22, 0, 5, hex('0102')), encodeRecord(20, 0, 6, hex('01')), encodeRecord(23, 1, 2 ** 40 + 7, hex('ff'))]);
    const recs = parseRecords(d);
    expect(recs.map((r) => [r.type, r.epoch, r.seq, toHex(r.fragment)])).toEqual([
      [22, 0, 5, '0102'],
      [20, 0, 6, '01'],
      [23, 1, 2 ** 40 + 7, 'ff'],
    ]);
  });

  it('stops at a truncated record but keeps the ones before it', () => {
    const good = encodeRecord(22, 0, 1, hex('0102'));
    const bad = encodeRecord(22, 0, 2, hex('01020304')).subarray(0, 15);
    expect(parseRecords(Buffer.concat([good, bad])).length).toBe(1);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const recs = parseRecords(b);
        for (const r of recs) expect(r.fragment.length).toBeLessThanOrEqual(b.length);
      }),
    );
  });

  it('seals and opens AES-128-CCM_8 records; any flipped bit fails authentication', () => {
    const c = new Ccm8Cipher(key, salt);
    const pt = Buffer.from('hello, constrained world');
    const frag = c.seal(ContentType.applicationData, 1, 42, pt);
    expect(frag.length).toBe(pt.length + 16);
    const rec = parseRecords(encodeRecord(ContentType.applicationData, 1, 42, frag))[0]!;
    expect(Buffer.from(c.open(rec)!).toString()).toBe(pt.toString());
    for (const i of [0, 8, 20, frag.length - 1]) {
      const bad = Uint8Array.from(frag);
      bad[i]! ^= 1;
      expect(c.open({ ...rec, fragment: bad })).toBeUndefined();
    }
    expect(c.open({ ...rec, seq: 43 })).toBeUndefined(); // sequence number is in the AAD
    expect(c.open({ ...rec, type: ContentType.handshake })).toBeUndefined();
    expect(c.open({ ...rec, fragment: frag.subarray(0, 10) })).toBeUndefined();
  });
});

describe('replay window (RFC 6347 §4.1.2.6)', () => {
  it('accepts new numbers once, rejects duplicates and numbers older than 64', () => {
    const w = new ReplayWindow();
    const accept = (n: number): boolean => {
      const ok = w.check(n);
      if (ok) w.mark(n);
      return ok;
    };
    expect(accept(0)).toBe(true);
    expect(accept(0)).toBe(false);
    expect(accept(5)).toBe(true);
    expect(accept(3)).toBe(true); // out of order but inside the window
    expect(accept(3)).toBe(false);
    expect(accept(100)).toBe(true);
    expect(accept(36)).toBe(false); // 100 - 36 = 64: outside
    expect(accept(37)).toBe(true);
    expect(accept(37)).toBe(false);
    expect(accept(1000)).toBe(true);
    expect(accept(100)).toBe(false);
    expect(accept(999)).toBe(true);
  });

  it('agrees with a set-based model', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), (seqs) => {
        const w = new ReplayWindow();
        const seen = new Set<number>();
        let top = -1;
        for (const s of seqs) {
          const model = !seen.has(s) && s > top - 64;
          expect(w.check(s)).toBe(model);
          if (model) {
            w.mark(s);
            seen.add(s);
            top = Math.max(top, s);
          }
        }
      }),
    );
  });
});

describe('handshake codec', () => {
  it('throws only DecodeError on arbitrary ClientHello bodies and fragments', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const f of [parseClientHello, parseFragments]) {
          try {
            f(b);
          } catch (e) {
            expect(e).toBeInstanceOf(DecodeError);
          }
        }
      }),
    );
  });

  it('reassembles fragments in any order (RFC 6347 §4.2.3)', () => {
    const body = Uint8Array.from({ length: 50 }, (_, i) => i);
    const r = new Reassembler();
    const frag = (off: number, len: number) => ({ msgType: 16, length: 50, messageSeq: 2, fragmentOffset: off, body: body.subarray(off, off + len) });
    expect(r.add(frag(30, 20))).toBeUndefined();
    expect(r.add(frag(0, 20))).toBeUndefined();
    expect(r.add(frag(10, 10))).toBeUndefined(); // overlap, still missing 20..30
    expect(toHex(r.add(frag(20, 10))!)).toBe(toHex(body));
  });
});

describe('cookies (RFC 6347 §4.2.1)', () => {
  let now = 0;
  let n = 0;
  const jar = new CookieJar({ lifetimeMs: 1000, now: () => now, random: (k) => new Uint8Array(k).fill(++n) });
  const params = hex('fefd0102');

  it('verifies its own cookie for the same peer and parameters only', () => {
    const c = jar.make('127.0.0.1:1000', params);
    expect(jar.verify('127.0.0.1:1000', params, c)).toBe(true);
    expect(jar.verify('127.0.0.1:1001', params, c)).toBe(false);
    expect(jar.verify('127.0.0.1:1000', hex('fefd0103'), c)).toBe(false);
    expect(jar.verify('127.0.0.1:1000', params, c.subarray(1))).toBe(false);
  });

  it('accepts a cookie for one rotation, not two', () => {
    now = 10_000;
    const c = jar.make('p', params);
    now += 1500; // one rotation: previous secret still accepted
    expect(jar.verify('p', params, c)).toBe(true);
    now += 1500; // second rotation: gone
    expect(jar.verify('p', params, c)).toBe(false);
  });
});
