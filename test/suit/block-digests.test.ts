import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { MerkleRootBuilder, buildBlockDigests, digestsLayout, leafHash } from '../../src/suit/block-digests.js';
import { blockDigestsOf, blockDigestsParameter, decodeBlockDigests, encodeBlockDigests } from '../../src/suit/block-digests-param.js';
import { BlockVerifier } from '../../src/suit/block-verifier.js';
import { bstr, encodeCbor } from '../../src/suit/cbor.js';
import { COAPFW_PARAM } from '../../src/suit/constants.js';
import { createEnvelope } from '../../src/suit/create.js';
import { decodeEnvelope } from '../../src/suit/decode.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { planUpdate } from '../../src/suit/plan.js';
import { verifyEnvelope } from '../../src/suit/verify.js';
import { hex, unhex } from './helpers.js';
import { mth } from './merkle-oracle.js';

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function code(f: () => void): { code: string; block: number | undefined } {
  try {
    f();
  } catch (e) {
    if (isCoapfwError(e)) return { code: e.code, block: e.block };
    throw e;
  }
  return { code: 'none', block: undefined };
}

describe('Merkle tree (RFC 9162 §2.1.1)', () => {
  // The certificate-transparency reference tests (merkle_tree_test): eight
  // leaf inputs and the root after each.
  const inputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  it('matches the reference roots for 1..8 leaves, streaming and recursive', () => {
    const b = new MerkleRootBuilder();
    inputs.forEach((h, i) => {
      b.push(leafHash(unhex(h)));
      expect(hex(b.root())).toBe(roots[i]);
      expect(hex(mth(inputs.slice(0, i + 1).map((x) => leafHash(unhex(x)))))).toBe(roots[i]);
    });
  });
  it('the empty tree is SHA-256 of nothing', () => {
    expect(hex(new MerkleRootBuilder().root())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
  it('holds at most ceil(log2 n) + 1 hashes', () => {
    const b = new MerkleRootBuilder();
    let most = 0;
    for (let i = 0; i < 1000; i++) {
      b.push(leafHash(bytes(4, i + 1)));
      most = Math.max(most, b.depth);
    }
    expect(most).toBeLessThanOrEqual(Math.ceil(Math.log2(1000)) + 1);
  });
});

describe('buildBlockDigests', () => {
  it('lays out leaves then page roots, and the root is the MTH over the leaves', () => {
    const image = bytes(10 * 64 + 5, 7);
    const { info, resource } = buildBlockDigests(image, { blockSize: 64, pageLeaves: 4 });
    const L = digestsLayout(info);
    expect(L).toEqual({ blocks: 11, pages: 3, pageBytes: 128, topOffset: 352, size: 448 });
    const leaves = Array.from({ length: 11 }, (_, i) => leafHash(image.subarray(i * 64, (i + 1) * 64)));
    expect(hex(resource.subarray(32, 64))).toBe(hex(leaves[1]!));
    expect(hex(info.root)).toBe(hex(mth(leaves)));
    expect(hex(resource.subarray(352 + 64, 448))).toBe(hex(mth(leaves.slice(8))));
  });
  it('an empty image has an empty resource and the empty root', () => {
    const { info, resource } = buildBlockDigests(new Uint8Array(0), { blockSize: 1024 });
    expect(resource.length).toBe(0);
    expect(hex(info.root)).toBe(hex(sha256(new Uint8Array(0))));
    const v = new BlockVerifier(info);
    v.acceptResource(resource);
    expect(code(() => v.checkBlock(0, new Uint8Array(0)))).toEqual({ code: 'DIGEST_MISMATCH', block: 0 });
  });
  it('refuses block sizes that are not powers of two', () => {
    expect(code(() => buildBlockDigests(new Uint8Array(10), { blockSize: 100 })).code).toBe('INVALID_ARGUMENT');
    expect(code(() => buildBlockDigests(new Uint8Array(10), { blockSize: 64, pageLeaves: 3 })).code).toBe('INVALID_ARGUMENT');
  });
});

describe('BlockVerifier', () => {
  const image = bytes(37 * 256 + 100, 99);
  const built = buildBlockDigests(image, { blockSize: 256, pageLeaves: 8 });

  function ready(): BlockVerifier {
    const v = new BlockVerifier(built.info);
    v.acceptResource(built.resource);
    return v;
  }

  it('accepts every block of the image, in any order', () => {
    const v = ready();
    const order = Array.from({ length: v.layout.blocks }, (_, i) => (i * 17) % v.layout.blocks);
    for (const i of order) v.checkBlock(i, image.subarray(i * 256, (i + 1) * 256));
  });

  it('catches a flipped byte in any block at that block, before anything else', () => {
    const v = ready();
    for (let i = 0; i < v.layout.blocks; i++) {
      const blk = image.slice(i * 256, (i + 1) * 256);
      blk[(i * 31) % blk.length]! ^= 0x01;
      expect(code(() => v.checkBlock(i, blk))).toEqual({ code: 'DIGEST_MISMATCH', block: i });
    }
  });

  it('catches a truncated, a padded, a swapped and an extra block', () => {
    const v = ready();
    expect(code(() => v.checkBlock(3, image.subarray(768, 1000)))).toEqual({ code: 'DIGEST_MISMATCH', block: 3 });
    const last = v.layout.blocks - 1;
    const padded = new Uint8Array(image.length - last * 256 + 1);
    padded.set(image.subarray(last * 256));
    expect(code(() => v.checkBlock(last, padded))).toEqual({ code: 'DIGEST_MISMATCH', block: last });
    v.checkBlock(last, image.subarray(last * 256));
    expect(code(() => v.checkBlock(4, image.subarray(5 * 256, 6 * 256)))).toEqual({ code: 'DIGEST_MISMATCH', block: 4 });
    expect(code(() => v.checkBlock(last + 1, new Uint8Array(256)))).toEqual({ code: 'DIGEST_MISMATCH', block: last + 1 });
  });

  it('catches a flipped byte anywhere in the leaf list at its page, and in the top list before any page', () => {
    const L = digestsLayout(built.info);
    for (let x = 0; x < L.size; x++) {
      const bad = built.resource.slice();
      bad[x]! ^= 0x80;
      const v = new BlockVerifier(built.info);
      const r = code(() => v.acceptResource(bad));
      if (x >= L.topOffset) expect(r).toEqual({ code: 'DIGEST_MISMATCH', block: undefined });
      else expect(r).toEqual({ code: 'DIGEST_MISMATCH', block: Math.floor(x / L.pageBytes) });
    }
  });

  it('checks pages out of order, asks for a page it does not hold, and bounds what it holds', () => {
    const v = new BlockVerifier(built.info, { maxPages: 2 });
    const page = (j: number): Uint8Array => {
      const r = v.pageRange(j);
      return built.resource.subarray(r.offset, r.offset + r.length);
    };
    expect(code(() => v.acceptPage(2, page(2))).code).toBe('BLOCK_DIGEST_UNAVAILABLE');
    const t = v.topRange();
    v.acceptTopList(built.resource.subarray(t.offset, t.offset + t.length));
    v.acceptPage(4, page(4)); // the short last page
    v.acceptPage(1, page(1));
    v.checkBlock(33, image.subarray(33 * 256, 34 * 256));
    expect(code(() => v.checkBlock(0, image.subarray(0, 256)))).toEqual({ code: 'BLOCK_DIGEST_UNAVAILABLE', block: 0 });
    v.acceptPage(0, page(0)); // evicts page 4, the oldest
    expect(v.hasPage(4)).toBe(false);
    v.checkBlock(0, image.subarray(0, 256));
    expect(code(() => v.acceptPage(3, page(2)))).toEqual({ code: 'DIGEST_MISMATCH', block: 3 });
  });
});

describe('coapfw-block-digests parameter', () => {
  const key = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(5));
  const image = bytes(5000, 3);
  const { info } = buildBlockDigests(image, { blockSize: 1024, uri: '/fw/sha256/00' });

  it('encodes as bstr .cbor [alg, block-size, page-leaves, image-size, root, uri] under -25601', () => {
    const [k, v] = blockDigestsParameter(info);
    expect(k).toBe(-25601);
    expect(hex(v)).toBe(hex(encodeBlockDigests(info)));
    expect(hex(encodeBlockDigests(info)).startsWith('86' + '2f' + '190400' + '1820' + '191388' + '5820')).toBe(true);
    expect(decodeBlockDigests(v)).toEqual(info);
  });

  it('is carried by a signed envelope, survives verification, and a parser that ignores it still plans the update', () => {
    const digest = sha256(image);
    const env = createEnvelope({ sequence: 3, vendorId: new Uint8Array(16).fill(1), classId: new Uint8Array(16).fill(2), uri: '/fw/x', digest, size: image.length, blockDigests: info }, [key]);
    const v = verifyEnvelope(env, { trust: { anchors: [{ name: 'k', publicKey: key.publicKey }] } });
    const shared = v.manifest.sharedSequence.find((c) => c.kind === 'override-parameters');
    expect(shared && shared.kind === 'override-parameters' && blockDigestsOf(shared.params)).toEqual(info);
    // The standard parts are unchanged: the plan fetches the same image with the same checks.
    const plan = planUpdate(v.manifest, {});
    expect(plan.images[0]!.uri).toBe('/fw/x');
    expect(hex(plan.images[0]!.digest!.bytes)).toBe(hex(digest));
  });

  it('refuses a malformed value, another algorithm, and a size that disagrees with image-size', () => {
    const bad = (a: unknown[]): string => code(() => decodeBlockDigests(bstr(encodeCbor(a)))).code;
    expect(bad([-16, 1024, 32, 10])).toBe('SUIT_MALFORMED');
    expect(bad([-16, 1000, 32, 10, bstr(new Uint8Array(32))])).toBe('SUIT_MALFORMED');
    expect(bad([-16, 1024, 32, 10, bstr(new Uint8Array(31))])).toBe('SUIT_MALFORMED');
    expect(bad([-44, 1024, 32, 10, bstr(new Uint8Array(32))])).toBe('SUIT_UNSUPPORTED');
    expect(code(() => decodeBlockDigests(7)).code).toBe('SUIT_MALFORMED');
    const other = new Map([blockDigestsParameter(info)]);
    expect(code(() => blockDigestsOf({ imageSize: 4999, other })).code).toBe('SUIT_MALFORMED');
    expect(blockDigestsOf({ imageSize: 5000 })).toBeUndefined();
  });

  it('decodeEnvelope keeps the unknown key as an opaque parameter', () => {
    const env = createEnvelope({ sequence: 1, vendorId: new Uint8Array(16), classId: new Uint8Array(16), uri: '/u', digest: sha256(image), size: 5000, blockDigests: info }, []);
    const m = decodeEnvelope(env).manifest;
    const p = m.sharedSequence.find((c) => c.kind === 'override-parameters');
    expect(p && p.kind === 'override-parameters' && p.params.other?.has(COAPFW_PARAM.blockDigests)).toBe(true);
  });
});
