/**
 * /status reports arrive from the network: CBOR goes through the bounded
 * scan of suit/cbor.ts before cbor-x sees it (issue 8, item 11).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Code, ContentFormat, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { StatusTracker } from '../../src/server/status.js';
import { scanCbor } from '../../src/suit/cbor.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

const enc = (s: string): number[] => [...new TextEncoder().encode(s)];
const tstr = (s: string): number[] => [0x60 + s.length, ...enc(s)];

function post(status: StatusTracker, device: string, payload: Uint8Array): ResponseSpec {
  const message = {
    type: MessageType.CON,
    code: Code.POST,
    messageId: 1,
    token: new Uint8Array(),
    options: [...pathOptions(`/status/${device}`), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(ContentFormat.CBOR) }],
    payload,
  } as const;
  return status.resource(device).handle({ message, peer: { address: '10.0.0.9', port: 9 } }) as ResponseSpec;
}

describe('/status CBOR reports are scanned before they are decoded', () => {
  const hostile: Record<string, number[]> = {
    'nesting 400 deep': [0xa1, ...tstr('state'), ...Array(400).fill(0x81), 0x00],
    'array of 2^32-1 entries': [0xa1, ...tstr('a'), 0x9a, 0xff, 0xff, 0xff, 0xff],
    'array of 100,663,296 entries': [0xa1, ...tstr('a'), 0x9a, 0x06, 0x00, 0x00, 0x00, ...Array(200).fill(0)],
    'text of 2^32-1 bytes': [0xa1, ...tstr('a'), 0x7a, 0xff, 0xff, 0xff, 0xff, 0x61],
    'map of 2^32-1 pairs': [0xba, 0xff, 0xff, 0xff, 0xff],
    'tag 0 (date)': [0xa1, ...tstr('a'), 0xc0, ...tstr('2020-01-01T00:00:00Z')],
    'tag 28 (cbor-x shared reference)': [0xa1, ...tstr('a'), 0xd8, 0x1c, 0x80],
    'tag 258 (cbor-x set)': [0xa1, ...tstr('a'), 0xd9, 0x01, 0x02, 0x80],
    'tag 55799 (self-describe) around the map': [0xd9, 0xd9, 0xf7, 0xa1, ...tstr('a'), 0x01],
    'tag 57344 (cbor-x record)': [0xd9, 0xe0, 0x00, 0x82, ...tstr('a'), ...tstr('b')],
    'tag 18 (COSE_Sign1, a SUIT tag) as a value': [0xa1, ...tstr('a'), 0xd2, 0x80],
    'duplicate key (cbor-x keeps the last)': [0xa2, ...tstr('state'), ...tstr('a'), ...tstr('state'), ...tstr('b')],
    'indefinite-length map': [0xbf, ...tstr('a'), 0x01, 0xff],
    'invalid UTF-8 text': [0xa1, ...tstr('a'), 0x62, 0xc3, 0x28],
    'trailing bytes': [0xa1, ...tstr('a'), 0x01, 0x00],
  };
  for (const [name, bytes] of Object.entries(hostile)) {
    it(`answers 4.00 and records nothing for ${name}`, () => {
      const status = new StatusTracker({ runtime: new FakeRuntime(1) });
      const res = post(status, 'dev-1', Uint8Array.from(bytes));
      expect(res.code).toBe(Code.BAD_REQUEST);
      expect(status.get('dev-1')).toBeUndefined();
    });
  }

  it('still accepts a plain report, integer keys as strings and bytes as hex', () => {
    const status = new StatusTracker({ runtime: new FakeRuntime(1) });
    // {"state": "installed", "seq": 7, 1: h'0102', "ok": true, "nested": [1]}
    const bytes = [0xa5, ...tstr('state'), ...tstr('installed'), ...tstr('seq'), 0x07, 0x01, 0x42, 0x01, 0x02, ...tstr('ok'), 0xf5, ...tstr('nested'), 0x81, 0x01];
    expect(post(status, 'dev-1', Uint8Array.from(bytes)).code).toBe(Code.CREATED);
    expect(status.get('dev-1')!.report).toEqual({ state: 'installed', seq: 7, '1': '0102', ok: true });
  });

  it('fuzz: 3000 mutated reports never crash the tracker, and only well-formed CBOR of scalars is stored', () => {
    const base = [0xa3, ...tstr('state'), ...tstr('failed'), ...tstr('seq'), 0x18, 0x2a, ...tstr('detail'), ...tstr('x')];
    let tried = 0;
    let accepted = 0;
    let failures = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length + 8), fc.nat(255)), { minLength: 1, maxLength: 6 }), (edits) => {
        const bytes = [...base];
        for (const [at, v] of edits) bytes[at % (bytes.length + 1)] = v;
        tried++;
        const status = new StatusTracker({ runtime: new FakeRuntime(1) });
        const res = post(status, 'dev-1', Uint8Array.from(bytes));
        const ok = res.code === Code.CREATED || res.code === Code.BAD_REQUEST;
        if (res.code === Code.CREATED) {
          accepted++;
          // Whatever was accepted is well-formed, definite-length, duplicate-free CBOR.
          try {
            scanCbor(Uint8Array.from(bytes), { maxDepth: 64, maxArrayLength: 1024, maxItems: 1024 }, 'accepted report');
          } catch {
            failures++;
          }
          for (const v of Object.values(status.get('dev-1')!.report)) if (v !== null && typeof v === 'object') failures++;
        }
        if (!ok) failures++;
        return ok;
      }),
      { numRuns: 3000, seed: 8011 },
    );
    console.log(`status CBOR fuzz: ${tried} inputs tried, ${accepted} accepted, ${failures} failures`);
    expect(failures).toBe(0);
  });
});
